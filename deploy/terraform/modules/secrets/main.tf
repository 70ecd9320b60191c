# One KMS key for the environment (secrets, logs, RDS, ElastiCache, ECR, SNS) and one
# Secrets Manager secret per OMC secret. Terraform creates the secrets EMPTY: operators put
# the values (`aws secretsmanager put-secret-value`, docs/operations.md), so no secret value
# is ever in a Terraform file, plan or state. Tasks receive them through `secrets` (valueFrom)
# in their task definitions, never as plain environment values.

data "aws_caller_identity" "this" {}
data "aws_region" "this" {}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_111:a key policy's resource "*" is the key itself (AWS's documented default policy)
  #checkov:skip=CKV_AWS_356:a key policy's resource "*" is the key itself
  #checkov:skip=CKV_AWS_109:the account root keeps administration of its own key, as AWS's default key policy does
  statement {
    sid       = "Account"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.this.account_id}:root"]
    }
  }
  statement {
    sid       = "Logs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.this.name}.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name}: secrets, logs, database, cache, images"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:OMC's secrets (its signing key, notifier tokens, exchange keys) are rotated by the operator as docs/operations.md says; there is no rotation Lambda that could do it
  for_each                = toset(var.secret_names)
  name                    = "${var.name}/${each.value}"
  description             = "OMC ${each.value} (value set outside Terraform)"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 30
}
