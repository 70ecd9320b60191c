# ElastiCache Redis (the broker and the event bus): a primary and a replica in the two AZs
# with automatic failover, encrypted at rest (the environment's key) and in transit (TLS).
# Only the ECS tasks' security group reaches it, inside the private subnets.

resource "aws_elasticache_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
}

resource "aws_security_group" "this" {
  name        = "${var.name}-redis"
  description = "Redis from the OMC tasks only"
  vpc_id      = var.vpc_id
  ingress {
    description     = "Redis (TLS) from the tasks"
    from_port       = 6379
    to_port         = 6379
    protocol        = "tcp"
    security_groups = [var.client_security_group_id]
  }
  egress {
    description = "Replies inside the VPC"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = [var.vpc_cidr]
  }
}

resource "aws_cloudwatch_log_group" "slow" {
  name              = "/omc/${var.name}/redis-slow"
  retention_in_days = 365
  kms_key_id        = var.kms_key_arn
}

resource "aws_elasticache_replication_group" "this" {
  #checkov:skip=CKV_AWS_31:an AUTH token would be written to Terraform's state; the cache is reachable only from the tasks' security group in private subnets, over TLS (IAM authentication is the next step)
  replication_group_id       = var.name
  description                = "OMC broker and event bus"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.node_type
  num_cache_clusters         = 2
  automatic_failover_enabled = true
  multi_az_enabled           = true
  port                       = 6379
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.this.id]
  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  transit_encryption_enabled = true
  auto_minor_version_upgrade = true
  snapshot_retention_limit   = 7
  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.slow.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }
}
