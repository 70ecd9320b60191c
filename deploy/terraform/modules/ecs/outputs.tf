output "cluster_name" {
  value = aws_ecs_cluster.this.name
}

output "repository_url" {
  value = aws_ecr_repository.omc.repository_url
}

output "tasks_security_group_id" {
  value = aws_security_group.tasks.id
}

output "private_subnet_ids" {
  value = var.private_subnet_ids
}

output "migrate_task_definition" {
  value = aws_ecs_task_definition.this["migrate"].arn
}

output "api_url" {
  value = "https://${aws_lb.api.dns_name}"
}

output "alb_arn_suffix" {
  value = aws_lb.api.arn_suffix
}

output "target_group_arn_suffix" {
  value = aws_lb_target_group.api.arn_suffix
}

output "log_group_names" {
  value = { for role, group in aws_cloudwatch_log_group.this : role => group.name }
}
