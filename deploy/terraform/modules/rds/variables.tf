variable "name" {
  type = string
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr" {
  type = string
}

variable "subnet_ids" {
  type        = list(string)
  description = "The private subnets (two AZs)."
}

variable "client_security_group_id" {
  type        = string
  description = "The ECS tasks' security group (the only one allowed in)."
}

variable "kms_key_arn" {
  type = string
}

variable "instance_class" {
  type    = string
  default = "db.t4g.medium"
}

variable "storage_gb" {
  type    = number
  default = 100
}

variable "backup_retention_days" {
  type    = number
  default = 14
}
