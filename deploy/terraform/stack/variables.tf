variable "name" {
  type = string
}

variable "region" {
  type = string
}

variable "cidr" {
  type = string
}

variable "availability_zones" {
  type = list(string)
}

variable "certificate_arn" {
  type = string
}

variable "image_tag" {
  type = string
}

variable "environment" {
  type    = map(string)
  default = {}
}

variable "alarm_emails" {
  type    = list(string)
  default = []
}

variable "accounts" {
  type    = list(string)
  default = ["paper"]
}

variable "api_count" {
  type = number
}

variable "workers_min" {
  type = number
}

variable "workers_max" {
  type = number
}

variable "queue_depth_per_worker" {
  type    = number
  default = 20
}

variable "task_cpu" {
  type = number
}

variable "task_memory" {
  type = number
}

variable "db_instance_class" {
  type = string
}

variable "db_storage_gb" {
  type = number
}

variable "db_backup_retention_days" {
  type = number
}

variable "redis_node_type" {
  type = string
}
