# OMC production: the shared stack (../../stack) with production's sizes. State in S3 with locking
# (bucket and table given at `terraform init -backend-config=backend.hcl`).

terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }
  backend "s3" {
    key     = "omc/production/terraform.tfstate"
    encrypt = true
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { Project = "omc", Environment = "production" }
  }
}

variable "region" {
  type    = string
  default = "ap-southeast-2"
}

variable "availability_zones" {
  type    = list(string)
  default = ["ap-southeast-2a", "ap-southeast-2b"]
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate of the production API domain."
}

variable "image_tag" {
  type        = string
  description = "The image to run (deploy/deploy.sh passes the commit)."
}

variable "alarm_emails" {
  type    = list(string)
  default = []
}

module "omc" {
  source                   = "../../stack"
  name                     = "omc-production"
  region                   = var.region
  availability_zones       = var.availability_zones
  cidr                     = "10.20.0.0/16"
  certificate_arn          = var.certificate_arn
  image_tag                = var.image_tag
  alarm_emails             = var.alarm_emails
  api_count                = 2
  workers_min              = 2
  workers_max              = 12
  task_cpu                 = 1024
  task_memory              = 2048
  db_instance_class        = "db.m6g.large"
  db_storage_gb            = 200
  db_backup_retention_days = 30
  redis_node_type          = "cache.m6g.large"
}

output "api_url" {
  value = module.omc.api_url
}

output "repository_url" {
  value = module.omc.repository_url
}

output "cluster_name" {
  value = module.omc.cluster_name
}

output "migrate_task_definition" {
  value = module.omc.migrate_task_definition
}

output "private_subnet_ids" {
  value = module.omc.private_subnet_ids
}

output "tasks_security_group_id" {
  value = module.omc.tasks_security_group_id
}
