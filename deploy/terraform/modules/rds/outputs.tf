output "address" {
  value = aws_db_instance.this.address
}

output "identifier" {
  value = aws_db_instance.this.identifier
}

output "master_secret_arn" {
  description = "The RDS-managed secret holding the password (JSON: username, password)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}
