# OMC on ECS Fargate: the image registry, the cluster, one task definition per role (api,
# scheduler, worker, migrate) and the services: the API behind the load balancer, two
# schedulers (one active, one standby: the database lease), the workers scaled on the
# broker's queue depth. Every secret reaches the containers through `secrets` (valueFrom
# Secrets Manager), never as a plain environment value; root filesystems are read-only.

locals {
  image = "${aws_ecr_repository.omc.repository_url}:${var.image_tag}"
  environment = merge(
    {
      OMC_DATABASE_URL = "postgresql+psycopg://omc@${var.database_address}:5432/omc?sslmode=require"
      OMC_BROKER_URL   = "rediss://${var.redis_address}:6379/1?ssl_cert_reqs=required"
      OMC_REDIS_URL    = "rediss://${var.redis_address}:6379/0?ssl_cert_reqs=required"
      OMC_LOG_FORMAT   = "json"
      OMC_DATA_DIR     = "/data"
    },
    var.environment,
  )
  secrets = concat(
    [{ name = "PGPASSWORD", valueFrom = "${var.database_secret_arn}:password::" }],
    [for name, arn in var.secret_arns : { name = name, valueFrom = arn }],
  )
  roles = {
    api       = ["serve", "--host", "0.0.0.0", "--port", "8000", "--insecure-public"]
    scheduler = ["scheduler"]
    worker    = ["worker", "--concurrency", "2"]
    migrate   = ["db", "upgrade"]
  }
  # the metrics sidecar of the API task: scrapes /metrics (the whole fleet's numbers, read
  # from the database and the broker) into CloudWatch namespace OMC for alarms and scaling
  otel_config = yamlencode({
    receivers = {
      prometheus = {
        config = {
          scrape_configs = [{
            job_name        = "omc"
            scrape_interval = "60s"
            metrics_path    = "/metrics/"
            static_configs  = [{ targets = ["127.0.0.1:8000"] }]
          }]
        }
      }
    }
    exporters = {
      awsemf = {
        namespace               = "OMC"
        log_group_name          = aws_cloudwatch_log_group.this["metrics"].name
        dimension_rollup_option = "NoDimensionRollup"
      }
    }
    service = { pipelines = { metrics = { receivers = ["prometheus"], exporters = ["awsemf"] } } }
  })
}

resource "aws_ecr_repository" "omc" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
}

resource "aws_ecs_cluster" "this" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "this" {
  for_each          = toset(["api", "scheduler", "worker", "migrate", "metrics"])
  name              = "/omc/${var.name}/${each.value}"
  retention_in_days = 365
  kms_key_id        = var.kms_key_arn
}

resource "aws_security_group" "tasks" {
  name        = "${var.name}-tasks"
  description = "OMC tasks: the API port from the load balancer; out to the VPC and HTTPS"
  vpc_id      = var.vpc_id
  ingress {
    description     = "The API from the load balancer"
    from_port       = 8000
    to_port         = 8000
    protocol        = "tcp"
    security_groups = [aws_security_group.alb.id]
  }
  egress {
    description = "PostgreSQL and Redis inside the VPC"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = [var.vpc_cidr]
  }
  egress {
    description = "HTTPS to the data sources, exchanges, notifiers and AWS APIs"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_ecs_task_definition" "this" {
  for_each                 = local.roles
  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  volume {
    name = "data"
  }
  volume {
    name = "tmp"
  }
  container_definitions = jsonencode(concat(
    [{
      name                   = "omc"
      image                  = local.image
      command                = each.value
      essential              = true
      readonlyRootFilesystem = true
      user                   = "10001"
      environment            = [for k, v in local.environment : { name = k, value = v }]
      secrets                = local.secrets
      mountPoints = [
        { sourceVolume = "data", containerPath = "/data" },
        { sourceVolume = "tmp", containerPath = "/tmp" },
      ]
      portMappings = each.key == "api" ? [{ containerPort = 8000, protocol = "tcp" }] : []
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this[each.key].name
          awslogs-region        = var.region
          awslogs-stream-prefix = each.key
        }
      }
    }],
    each.key == "api" ? [{
      name                   = "metrics"
      image                  = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.1"
      essential              = false
      readonlyRootFilesystem = true
      environment            = [{ name = "AOT_CONFIG_CONTENT", value = local.otel_config }]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this["metrics"].name
          awslogs-region        = var.region
          awslogs-stream-prefix = "otel"
        }
      }
    }] : [],
  ))
}

resource "aws_ecs_service" "api" {
  name            = "api"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.this["api"].arn
  desired_count   = var.api_count
  launch_type     = "FARGATE"
  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }
  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = "omc"
    container_port   = 8000
  }
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  depends_on = [aws_lb_listener.https]
}

resource "aws_ecs_service" "scheduler" {
  name            = "scheduler"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.this["scheduler"].arn
  desired_count   = 2 # one active, one standby
  launch_type     = "FARGATE"
  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
}

resource "aws_ecs_service" "worker" {
  name            = "worker"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.this["worker"].arn
  desired_count   = var.workers_min
  launch_type     = "FARGATE"
  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  lifecycle {
    ignore_changes = [desired_count] # the autoscaler owns it
  }
}

resource "aws_appautoscaling_target" "workers" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.worker.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.workers_min
  max_capacity       = var.workers_max
}

resource "aws_appautoscaling_policy" "workers" {
  name               = "${var.name}-queue-depth"
  service_namespace  = aws_appautoscaling_target.workers.service_namespace
  resource_id        = aws_appautoscaling_target.workers.resource_id
  scalable_dimension = aws_appautoscaling_target.workers.scalable_dimension
  policy_type        = "TargetTrackingScaling"
  target_tracking_scaling_policy_configuration {
    target_value       = var.queue_depth_per_worker
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    customized_metric_specification {
      namespace   = "OMC"
      metric_name = "omc_queue_depth"
      statistic   = "Maximum"
      unit        = "None"
    }
  }
}
