variable "name" {
  type = string
}

variable "region" {
  type = string
}

variable "kms_key_arn" {
  type = string
}

variable "alarm_emails" {
  type        = list(string)
  description = "Who the alarms mail (through the SNS topic)."
  default     = []
}

variable "alb_arn_suffix" {
  type = string
}

variable "target_group_arn_suffix" {
  type = string
}

variable "rds_identifier" {
  type = string
}

variable "redis_replication_group_id" {
  type = string
}

variable "ledgers" {
  type    = list(string)
  default = ["exchange", "glass", "human", "catalyst"]
}

variable "collectors" {
  type        = map(string)
  description = "Collector -> its ledger (the failing-runs alarm of each)."
  default = {
    coinspot      = "exchange"
    defillama     = "glass"
    onchain       = "glass"
    cryptopanic   = "human"
    reddit        = "human"
    news          = "human"
    sec           = "catalyst"
    announcements = "catalyst"
  }
}

variable "accounts" {
  type        = list(string)
  description = "Trading accounts whose daily loss is watched."
  default     = ["paper"]
}

variable "queues" {
  type    = list(string)
  default = ["collect", "compute", "notify"]
}
