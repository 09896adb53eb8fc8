################################################################################
# The shared result cache: ElastiCache (Valkey by default, or Redis OSS), TLS only, auth
# token in Secrets Manager. A Multi-AZ replication group with automatic failover, or
# ElastiCache Serverless with cache_serverless = true.
################################################################################

locals {
  cache_engine_version       = coalesce(var.cache_engine_version, var.cache_engine == "valkey" ? "8.0" : "7.1")
  cache_major_engine_version = split(".", local.cache_engine_version)[0]
}

# ElastiCache tokens: 16-128 printable characters, a restricted symbol set; alphanumerics
# are always accepted.
resource "random_password" "cache_auth" {
  length  = 64
  special = false
}

resource "aws_secretsmanager_secret" "cache_auth" {
  #checkov:skip=CKV2_AWS_57:Rotation means changing the ElastiCache auth token in step (auth_token_update_strategy ROTATE); it is done by Terraform (replace random_password.cache_auth), not a rotation Lambda.
  name_prefix             = "${var.name}/cache-auth-token-"
  description             = "AUTH token of the docfn ${var.name} cache (DOCFN_REDIS_AUTH_SECRET_ARN)"
  kms_key_id              = local.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_in_days

  tags = local.tags
}

resource "aws_secretsmanager_secret_version" "cache_auth" {
  secret_id     = aws_secretsmanager_secret.cache_auth.id
  secret_string = random_password.cache_auth.result
}

resource "aws_elasticache_subnet_group" "this" {
  name        = "${var.name}-cache"
  description = "docfn ${var.name} cache: private subnets"
  subnet_ids  = local.private_subnet_ids

  tags = local.tags
}

resource "aws_elasticache_replication_group" "this" {
  count = var.cache_serverless ? 0 : 1

  replication_group_id = "${var.name}-cache"
  description          = "docfn ${var.name} result cache"

  engine             = var.cache_engine
  engine_version     = local.cache_engine_version
  node_type          = var.cache_node_type
  num_cache_clusters = var.cache_num_cache_clusters
  port               = 6379

  subnet_group_name  = aws_elasticache_subnet_group.this.name
  security_group_ids = [aws_security_group.cache.id]

  automatic_failover_enabled = true
  multi_az_enabled           = true

  at_rest_encryption_enabled = true
  kms_key_id                 = local.kms_key_arn
  transit_encryption_enabled = true
  auth_token                 = random_password.cache_auth.result
  auth_token_update_strategy = "ROTATE"

  snapshot_retention_limit   = var.cache_snapshot_retention_limit
  auto_minor_version_upgrade = true
  apply_immediately          = var.cache_apply_immediately

  tags = local.tags
}

# Serverless caches authenticate through a user group; a user named "default" with the same
# token keeps the client side identical (AUTH <token>).
resource "aws_elasticache_user" "default" {
  count = var.cache_serverless ? 1 : 0

  user_id       = "${var.name}-default"
  user_name     = "default"
  engine        = var.cache_engine
  access_string = "on ~* +@all"

  authentication_mode {
    type      = "password"
    passwords = [random_password.cache_auth.result]
  }

  tags = local.tags
}

resource "aws_elasticache_user_group" "this" {
  count = var.cache_serverless ? 1 : 0

  user_group_id = "${var.name}-cache"
  engine        = var.cache_engine
  user_ids      = [aws_elasticache_user.default[0].user_id]

  tags = local.tags
}

resource "aws_elasticache_serverless_cache" "this" {
  count = var.cache_serverless ? 1 : 0

  name                 = "${var.name}-cache"
  description          = "docfn ${var.name} result cache"
  engine               = var.cache_engine
  major_engine_version = local.cache_major_engine_version

  cache_usage_limits {
    data_storage {
      maximum = var.cache_serverless_max_storage_gb
      unit    = "GB"
    }
    ecpu_per_second {
      maximum = var.cache_serverless_max_ecpu_per_second
    }
  }

  kms_key_id               = local.kms_key_arn
  security_group_ids       = [aws_security_group.cache.id]
  subnet_ids               = local.private_subnet_ids
  user_group_id            = aws_elasticache_user_group.this[0].user_group_id
  snapshot_retention_limit = var.cache_snapshot_retention_limit

  tags = local.tags
}
