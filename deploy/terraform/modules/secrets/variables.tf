variable "name" {
  type        = string
  description = "Prefix of every resource."
}

variable "secret_names" {
  type        = list(string)
  description = "OMC's secrets, each an environment variable of the tasks (OMC_SECRET_KEY, …)."
  default     = ["OMC_SECRET_KEY", "OMC_SLACK_WEBHOOK_URL", "OMC_TELEGRAM_BOT_TOKEN", "OMC_CRYPTOPANIC_TOKEN"]
}
