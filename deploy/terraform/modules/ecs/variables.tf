variable "name" {
  type = string
}

variable "region" {
  type = string
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr" {
  type = string
}

variable "public_subnet_ids" {
  type = list(string)
}

variable "private_subnet_ids" {
  type = list(string)
}

variable "kms_key_arn" {
  type = string
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate of the API's domain (HTTPS on the load balancer)."
}

variable "image_tag" {
  type        = string
  description = "The OMC image to run (deploy/deploy.sh sets it to the commit)."
}

variable "database_address" {
  type = string
}

variable "database_secret_arn" {
  type        = string
  description = "The RDS-managed secret of the database password (JSON key `password`)."
}

variable "redis_address" {
  type = string
}

variable "secret_arns" {
  type        = map(string)
  description = "Environment variable -> Secrets Manager ARN, injected with valueFrom."
}

variable "environment" {
  type        = map(string)
  description = "Further plain (non-secret) OMC settings for every task."
  default     = {}
}

variable "api_count" {
  type    = number
  default = 2
}

variable "workers_min" {
  type    = number
  default = 2
}

variable "workers_max" {
  type    = number
  default = 8
}

variable "queue_depth_per_worker" {
  type        = number
  description = "Autoscaling target: jobs waiting in the broker (omc_queue_depth) to aim for."
  default     = 20
}

variable "cpu" {
  type    = number
  default = 1024
}

variable "memory" {
  type    = number
  default = 2048
}
