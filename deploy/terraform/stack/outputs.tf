output "api_url" {
  value = module.ecs.api_url
}

output "repository_url" {
  value = module.ecs.repository_url
}

output "cluster_name" {
  value = module.ecs.cluster_name
}

output "migrate_task_definition" {
  value = module.ecs.migrate_task_definition
}

output "private_subnet_ids" {
  value = module.ecs.private_subnet_ids
}

output "tasks_security_group_id" {
  value = module.ecs.tasks_security_group_id
}

output "alarm_topic_arn" {
  value = module.monitoring.alarm_topic_arn
}
