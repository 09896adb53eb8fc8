################################################################################
# docfn on AWS: one container-image Lambda per task, a TTL bucket, a shared cache.
#
# Files by concern: bucket.tf (TTL bucket), events.tf (S3 -> SQS/EventBridge -> Lambda),
# ecr.tf, lambda.tf, iam.tf, api.tf (HTTP API + custom domain), cache.tf (ElastiCache +
# auth token secret), network.tf (VPC, endpoints, security groups), kms.tf, alarms.tf,
# packs.tf (the model pack(s) each function loads), warmth.tf + alias.tf (SnapStart, provisioned
# concurrency: a published version behind a "live" alias).
################################################################################

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region

  tags = merge({ "app" = "docfn", "docfn:stack" = var.name }, var.tags)

  tasks = var.tasks

  function_names = { for task in keys(local.tasks) : task => "${var.name}-${task}" }

  bucket_name = coalesce(var.bucket_name, "${var.name}-${local.account_id}-${local.region}")

  # One key for everything when encryption with a customer managed key is on; null means the
  # AWS managed defaults (SSE-S3, SQS-SSE, aws/secretsmanager, ...).
  kms_key_arn = var.kms_key_arn != null ? var.kms_key_arn : (var.create_kms_key ? aws_kms_key.this[0].arn : null)
  use_kms     = var.kms_key_arn != null || var.create_kms_key

  # The S3 layout the Python app relies on.
  uploads_prefix = "uploads/"
  results_prefix = "results/"
  models_prefix  = "models/"

  image_uris = {
    for task in keys(local.tasks) : task => lookup(var.image_uris, task, "${aws_ecr_repository.this[task].repository_url}:${var.image_tag}")
  }

  cache_endpoint = var.cache_serverless ? aws_elasticache_serverless_cache.this[0].endpoint[0].address : aws_elasticache_replication_group.this[0].primary_endpoint_address
  cache_port     = var.cache_serverless ? aws_elasticache_serverless_cache.this[0].endpoint[0].port : aws_elasticache_replication_group.this[0].port
  # No password in the URL: the functions read it from DOCFN_REDIS_AUTH_SECRET_ARN.
  redis_url = "rediss://${local.cache_endpoint}:${local.cache_port}/0"

  function_environment = {
    for task, cfg in local.tasks : task => merge(
      cfg.environment,
      {
        DOCFN_TASKS                 = task
        DOCFN_BUCKET                = aws_s3_bucket.this.id
        DOCFN_REDIS_URL             = local.redis_url
        DOCFN_REDIS_AUTH_SECRET_ARN = aws_secretsmanager_secret.cache_auth.arn
        DOCFN_TRACING               = var.tracing
        DOCFN_RESULT_TTL_SECONDS    = tostring(var.result_ttl_seconds)
        DOCFN_LOG_LEVEL             = var.log_level
        # Load the packs during init, overlapping their download with the imports (docs/lambda.md).
        DOCFN_EAGER_LOAD = "1"
      },
      # DOCFN_MODEL_URI (tasks with a pack of their own: not formula, chart or summarize) and
      # DOCFN_<ROLE>_MODEL_URI (table, parse, formula, chart, summarize), see packs.tf.
      { for variable, pack in local.task_model_packs[task] : variable => "s3://${aws_s3_bucket.this.id}/${local.models_prefix}${pack}" },
    )
  }
}

# Cross-variable checks (kept out of variable validation blocks so Terraform >= 1.5 works).
resource "terraform_data" "input_checks" {
  input = var.name

  lifecycle {
    precondition {
      condition     = var.create_vpc || (var.vpc_id != null && length(var.private_subnet_ids) >= 2)
      error_message = "With create_vpc = false, set vpc_id and at least two private_subnet_ids (in different AZs)."
    }
    precondition {
      condition     = var.create_vpc || !var.create_s3_gateway_endpoint || length(var.private_route_table_ids) > 0
      error_message = "With create_vpc = false and create_s3_gateway_endpoint = true, set private_route_table_ids."
    }
    precondition {
      condition     = !var.create_api_gateway || contains(keys(var.tasks), var.jobs_task)
      error_message = "jobs_task must be one of the deployed tasks."
    }
    precondition {
      condition     = var.domain_name == null || var.certificate_arn != null || var.route53_zone_id != null
      error_message = "A domain_name needs either certificate_arn or route53_zone_id (for DNS validation of a new certificate)."
    }
    precondition {
      condition     = var.api_authorization_type != "JWT" || (var.api_jwt_issuer != null && length(var.api_jwt_audience) > 0)
      error_message = "api_authorization_type = JWT needs api_jwt_issuer and api_jwt_audience."
    }
  }
}
