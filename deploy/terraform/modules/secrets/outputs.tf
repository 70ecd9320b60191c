output "kms_key_arn" {
  value = aws_kms_key.this.arn
}

output "secret_arns" {
  description = "Environment variable -> secret ARN (for the task definitions' `secrets`)."
  value       = { for name, secret in aws_secretsmanager_secret.this : name => secret.arn }
}
