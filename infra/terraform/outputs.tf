output "function_urls" {
  description = "Function URL per task (AWS_IAM-signed unless function_url_auth_type = NONE)."
  value       = { for task, url in aws_lambda_function_url.this : task => url.function_url }
}

output "function_names" {
  description = "Lambda function name per task."
  value       = { for task, fn in aws_lambda_function.this : task => fn.function_name }
}

output "function_arns" {
  description = "Lambda function ARN per task."
  value       = { for task, fn in aws_lambda_function.this : task => fn.arn }
}

output "function_role_arns" {
  description = "Execution role ARN per task."
  value       = { for task, role in aws_iam_role.this : task => role.arn }
}

output "ecr_repository_urls" {
  description = "ECR repository URL per task: push <url>:<image_tag> before the functions are created."
  value       = { for task, repo in aws_ecr_repository.this : task => repo.repository_url }
}

output "image_uris" {
  description = "Image URI each function runs."
  value       = local.image_uris
}

output "bucket_name" {
  description = "The TTL bucket (uploads/, results/, models/)."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the TTL bucket."
  value       = aws_s3_bucket.this.arn
}

output "model_uris" {
  description = "DOCFN_MODEL_URI per task: the task's own model pack (tasks without a pack are left out)."
  value       = { for task, packs in local.task_model_packs : task => "s3://${aws_s3_bucket.this.id}/${local.models_prefix}${packs.DOCFN_MODEL_URI}" if contains(keys(packs), "DOCFN_MODEL_URI") }
}

output "role_model_uris" {
  description = "Per task that reads secondary packs (table, parse, formula, chart, summarize): DOCFN_<ROLE>_MODEL_URI => the pack URI of each."
  value = { for task, packs in local.task_model_packs : task => {
    for variable, pack in packs : variable => "s3://${aws_s3_bucket.this.id}/${local.models_prefix}${pack}" if variable != "DOCFN_MODEL_URI"
  } if length(packs) > (contains(keys(packs), "DOCFN_MODEL_URI") ? 1 : 0) }
}

output "model_packs" {
  description = "Every model pack (\"<name>/<version>\") the functions read: publish each to s3://<bucket>/models/<name>/<version>/ before the first request."
  value       = local.model_packs
}

output "cache_endpoint" {
  description = "Cache primary endpoint address."
  value       = local.cache_endpoint
}

output "cache_port" {
  description = "Cache port."
  value       = local.cache_port
}

output "redis_url" {
  description = "DOCFN_REDIS_URL given to the functions (TLS; no password in it)."
  value       = local.redis_url
}

output "cache_auth_secret_arn" {
  description = "Secrets Manager secret holding the cache AUTH token (DOCFN_REDIS_AUTH_SECRET_ARN)."
  value       = aws_secretsmanager_secret.cache_auth.arn
}

output "queue_urls" {
  description = "Upload event queue URL per task."
  value       = { for task, q in aws_sqs_queue.this : task => q.url }
}

output "queue_arns" {
  description = "Upload event queue ARN per task."
  value       = { for task, q in aws_sqs_queue.this : task => q.arn }
}

output "dead_letter_queue_urls" {
  description = "Dead-letter queue URL per task."
  value       = { for task, q in aws_sqs_queue.dlq : task => q.url }
}

output "api_endpoint" {
  description = "HTTP API endpoint (https://<id>.execute-api.<region>.amazonaws.com), or null without create_api_gateway."
  value       = var.create_api_gateway ? aws_apigatewayv2_api.this[0].api_endpoint : null
}

output "api_custom_domain_url" {
  description = "https://<domain_name> when a custom domain is configured."
  value       = local.create_domain ? "https://${var.domain_name}" : null
}

output "api_custom_domain_target" {
  description = "Regional target to alias/CNAME domain_name to when the zone is not managed here."
  value       = local.create_domain ? aws_apigatewayv2_domain_name.this[0].domain_name_configuration[0].target_domain_name : null
}

output "invoke_policy_arn" {
  description = "Managed policy to attach to callers of the AWS_IAM function URLs / HTTP API."
  value       = aws_iam_policy.invoke.arn
}

output "kms_key_arn" {
  description = "KMS key encrypting the bucket, queues, logs, secret, cache and images (null: AWS managed encryption)."
  value       = local.kms_key_arn
}

output "vpc_id" {
  description = "VPC of the functions and the cache."
  value       = local.vpc_id
}

output "private_subnet_ids" {
  description = "Private subnets of the functions and the cache."
  value       = local.private_subnet_ids
}

output "function_security_group_id" {
  description = "Security group of the functions."
  value       = aws_security_group.function.id
}

output "invoke_arns" {
  description = "What each task's triggers call: the \"live\" alias ARN for tasks with SnapStart or provisioned concurrency, else the function ARN."
  value       = local.invoke_arns
}

output "web_bundle_url" {
  description = "HTTPS URL of the static in-browser OCR page on CloudFront (null unless web_bundle.enabled)."
  value       = one(module.web_bundle[*].url)
}

output "web_bundle_distribution_id" {
  description = "CloudFront distribution ID of the web bundle, for invalidations (null unless web_bundle.enabled)."
  value       = one(module.web_bundle[*].distribution_id)
}

output "web_bundle_bucket_name" {
  description = "Bucket holding the web bundle (null unless web_bundle.enabled)."
  value       = one(module.web_bundle[*].bucket_name)
}
