# One OMC environment from the six modules; envs/staging and envs/production instantiate it
# with their own sizes. Order of construction: key and secrets, network, the ECS side
# (its tasks' security group admits them to the database and the cache), RDS, ElastiCache,
# then the alarms and the dashboard.

module "secrets" {
  source = "../modules/secrets"
  name   = var.name
}

module "network" {
  source             = "../modules/network"
  name               = var.name
  cidr               = var.cidr
  availability_zones = var.availability_zones
  kms_key_arn        = module.secrets.kms_key_arn
}

module "ecs" {
  source                 = "../modules/ecs"
  name                   = var.name
  region                 = var.region
  vpc_id                 = module.network.vpc_id
  vpc_cidr               = module.network.vpc_cidr
  public_subnet_ids      = module.network.public_subnet_ids
  private_subnet_ids     = module.network.private_subnet_ids
  kms_key_arn            = module.secrets.kms_key_arn
  certificate_arn        = var.certificate_arn
  image_tag              = var.image_tag
  database_address       = module.rds.address
  database_secret_arn    = module.rds.master_secret_arn
  redis_address          = module.redis.primary_endpoint
  secret_arns            = module.secrets.secret_arns
  environment            = var.environment
  api_count              = var.api_count
  workers_min            = var.workers_min
  workers_max            = var.workers_max
  queue_depth_per_worker = var.queue_depth_per_worker
  cpu                    = var.task_cpu
  memory                 = var.task_memory
}

module "rds" {
  source                   = "../modules/rds"
  name                     = var.name
  vpc_id                   = module.network.vpc_id
  vpc_cidr                 = module.network.vpc_cidr
  subnet_ids               = module.network.private_subnet_ids
  client_security_group_id = module.ecs.tasks_security_group_id
  kms_key_arn              = module.secrets.kms_key_arn
  instance_class           = var.db_instance_class
  storage_gb               = var.db_storage_gb
  backup_retention_days    = var.db_backup_retention_days
}

module "redis" {
  source                   = "../modules/redis"
  name                     = var.name
  vpc_id                   = module.network.vpc_id
  vpc_cidr                 = module.network.vpc_cidr
  subnet_ids               = module.network.private_subnet_ids
  client_security_group_id = module.ecs.tasks_security_group_id
  kms_key_arn              = module.secrets.kms_key_arn
  node_type                = var.redis_node_type
}

module "monitoring" {
  source                     = "../modules/monitoring"
  name                       = var.name
  region                     = var.region
  kms_key_arn                = module.secrets.kms_key_arn
  alarm_emails               = var.alarm_emails
  alb_arn_suffix             = module.ecs.alb_arn_suffix
  target_group_arn_suffix    = module.ecs.target_group_arn_suffix
  rds_identifier             = module.rds.identifier
  redis_replication_group_id = module.redis.replication_group_id
  accounts                   = var.accounts
}
