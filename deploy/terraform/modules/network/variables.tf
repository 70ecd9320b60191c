variable "name" {
  type        = string
  description = "Prefix of every resource (omc-staging, omc-production)."
}

variable "cidr" {
  type        = string
  description = "The VPC's address range."
  default     = "10.20.0.0/16"
}

variable "kms_key_arn" {
  type        = string
  description = "The KMS key that encrypts the flow logs."
}

variable "availability_zones" {
  type        = list(string)
  description = "The two availability zones (e.g. ap-southeast-2a, ap-southeast-2b)."
  validation {
    condition     = length(var.availability_zones) == 2
    error_message = "Give exactly two availability zones."
  }
}
