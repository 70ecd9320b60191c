# Alarms (to an encrypted SNS topic) and the dashboard. The AWS metrics come from the load
# balancer, RDS and ElastiCache; OMC's own (namespace OMC) from the API task's metrics
# sidecar, which scrapes `/metrics` — the numbers of the whole fleet, read from the
# database and the broker (omc.ops.metrics). The Prometheus rules in deploy/prometheus say
# the same for a Prometheus-based setup; docs/operations.md says what to do for each alarm.

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.alarm_emails)
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

locals {
  actions = [aws_sns_topic.alarms.arn]
  alb     = { LoadBalancer = var.alb_arn_suffix }
  # OMC alarms of one metric each: name -> (metric, dimensions, comparison, threshold, periods, description)
  omc = merge(
    {
      for ledger in var.ledgers : "ledger-stale-${ledger}" => {
        metric    = "omc_ledger_staleness_ratio", dims = { ledger = ledger }, op = "GreaterThanThreshold",
        threshold = 3, periods = 5, stat = "Maximum",
        text      = "OmcLedgerStale: no collector of the ${ledger} ledger succeeded for 3 intervals"
      }
    },
    {
      for collector, ledger in var.collectors : "collector-failing-${collector}" => {
        metric = "omc_collector_runs_total", dims = { collector = collector, ledger = ledger, status = "failed" },
        op     = "GreaterThanOrEqualToThreshold", threshold = 3, periods = 15, stat = "Sum",
        text   = "OmcCollectorFailing: 3 or more failed runs of ${collector} in 15 minutes"
      }
    },
    {
      for queue in var.queues : "queue-depth-${queue}" => {
        metric    = "omc_queue_depth", dims = { queue = queue }, op = "GreaterThanThreshold",
        threshold = 100, periods = 10, stat = "Maximum",
        text      = "OmcQueueBacklog: more than 100 jobs waiting in ${queue} for 10 minutes"
      }
    },
    {
      for account in var.accounts : "daily-loss-${account}" => {
        metric = "omc_account_daily_loss_limit_ratio", dims = { account = account },
        op     = "GreaterThanOrEqualToThreshold", threshold = 0.8, periods = 1, stat = "Maximum",
        text   = "OmcDailyLossNearLimit: ${account} lost 80 % of its daily-loss limit"
      }
    },
    {
      listing-alert-latency = {
        metric = "omc_alert_latency_seconds",
        dims   = { source = "announcements", kind = "listing", stage = "delivered" },
        op     = "GreaterThanThreshold", threshold = 120, periods = 1, stat = "Maximum",
        text   = "OmcListingAlertSlow: a listing alert reached its notifiers > 120 s after publication"
      }
      dead-letters = {
        metric    = "omc_queue_dead_letters", dims = {}, op = "GreaterThanThreshold",
        threshold = 0, periods = 1, stat = "Maximum",
        text      = "OmcDeadLetters: jobs were given up on; `omc status` lists them"
      }
      kill-switch = {
        metric    = "omc_kill_switch_engaged", dims = {}, op = "GreaterThanOrEqualToThreshold",
        threshold = 1, periods = 1, stat = "Maximum",
        text      = "OmcKillSwitchEngaged: no account trades (docs/operations.md, the kill switch)"
      }
    },
  )
}

resource "aws_cloudwatch_metric_alarm" "omc" {
  for_each            = local.omc
  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.text
  namespace           = "OMC"
  metric_name         = each.value.metric
  dimensions          = each.value.dims
  statistic           = each.value.stat
  period              = 60
  evaluation_periods  = each.value.periods
  comparison_operator = each.value.op
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "api_5xx_rate" {
  alarm_name          = "${var.name}-api-5xx-rate"
  alarm_description   = "More than 5 % of API responses are 5xx for 5 minutes"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 5
  evaluation_periods  = 5
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  metric_query {
    id          = "rate"
    expression  = "100 * errors / MAX([requests, 1])"
    label       = "5xx %"
    return_data = true
  }
  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = local.alb
      period      = 60
      stat        = "Sum"
    }
  }
  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = local.alb
      period      = 60
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "api_latency" {
  alarm_name          = "${var.name}-api-latency"
  alarm_description   = "API p95 response time above 1 s for 5 minutes"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.target_group_arn_suffix }
  extended_statistic  = "p95"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "rds_cpu" {
  alarm_name          = "${var.name}-rds-cpu"
  alarm_description   = "Database CPU above 80 % for 10 minutes"
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  dimensions          = { DBInstanceIdentifier = var.rds_identifier }
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 10
  comparison_operator = "GreaterThanThreshold"
  threshold           = 80
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "rds_storage" {
  alarm_name          = "${var.name}-rds-storage"
  alarm_description   = "Database free storage below 10 GB"
  namespace           = "AWS/RDS"
  metric_name         = "FreeStorageSpace"
  dimensions          = { DBInstanceIdentifier = var.rds_identifier }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "LessThanThreshold"
  threshold           = 10 * 1024 * 1024 * 1024
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_metric_alarm" "redis_memory" {
  for_each            = toset(["001", "002"])
  alarm_name          = "${var.name}-redis-memory-${each.value}"
  alarm_description   = "Redis node ${each.value} above 80 % of its memory"
  namespace           = "AWS/ElastiCache"
  metric_name         = "DatabaseMemoryUsagePercentage"
  dimensions          = { CacheClusterId = "${var.redis_replication_group_id}-${each.value}" }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = 80
  alarm_actions       = local.actions
  ok_actions          = local.actions
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title = "API: requests, 5xx, p95 latency", region = var.region, view = "timeSeries"
          metrics = [
            ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", var.alb_arn_suffix, { stat = "Sum" }],
            [".", "HTTPCode_Target_5XX_Count", ".", ".", { stat = "Sum" }],
            [".", "TargetResponseTime", ".", ".", { stat = "p95", yAxis = "right" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title = "Queue depth and dead letters", region = var.region, view = "timeSeries"
          metrics = concat(
            [for q in var.queues : ["OMC", "omc_queue_depth", "queue", q]],
            [["OMC", "omc_queue_dead_letters", { yAxis = "right" }]],
          )
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title       = "Ledger staleness (intervals since the last success)", region = var.region
          metrics     = [for l in var.ledgers : ["OMC", "omc_ledger_staleness_ratio", "ledger", l]]
          annotations = { horizontal = [{ value = 3, label = "stale" }] }
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title = "Trading: kill switch, daily loss / limit", region = var.region
          metrics = concat(
            [["OMC", "omc_kill_switch_engaged"]],
            [for a in var.accounts : ["OMC", "omc_account_daily_loss_limit_ratio", "account", a]],
          )
        }
      },
      {
        type = "metric", x = 0, y = 12, width = 12, height = 6
        properties = {
          title = "RDS CPU and free storage", region = var.region
          metrics = [
            ["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", var.rds_identifier],
            [".", "FreeStorageSpace", ".", ".", { yAxis = "right" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 12, width = 12, height = 6
        properties = {
          title   = "Redis memory %", region = var.region
          metrics = [for n in ["001", "002"] : ["AWS/ElastiCache", "DatabaseMemoryUsagePercentage", "CacheClusterId", "${var.redis_replication_group_id}-${n}"]]
        }
      },
    ]
  })
}
