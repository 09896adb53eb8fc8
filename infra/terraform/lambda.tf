################################################################################
# One container-image function per task. The image sets CMD docfn.adapters.aws_lambda.handler.handler;
# the same image answers function URL / API Gateway (payload 2.0), SQS and EventBridge
# events.
################################################################################

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.tasks

  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = local.kms_key_arn

  tags = local.tags
}

# Optional log shipping (off unless log_subscription_destination_arn is set): the structured request
# lines only - the app logs exactly one per request, with request_id, input_sha256, task,
# duration_ms and status - to a Firehose/Kinesis/Lambda destination that indexes them in OpenSearch.
resource "aws_cloudwatch_log_subscription_filter" "requests" {
  for_each = var.log_subscription_destination_arn == null ? {} : local.tasks

  name            = "${local.function_names[each.key]}-requests"
  log_group_name  = aws_cloudwatch_log_group.function[each.key].name
  filter_pattern  = "{ $.message = \"request\" }"
  destination_arn = var.log_subscription_destination_arn
  role_arn        = var.log_subscription_role_arn
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_272:Code signing only applies to .zip packages; images are pinned by immutable ECR tags and scanned on push.
  for_each = local.tasks

  function_name = local.function_names[each.key]
  description   = "docfn ${each.key} task"
  role          = aws_iam_role.this[each.key].arn

  package_type  = "Image"
  image_uri     = local.image_uris[each.key]
  architectures = [each.value.architecture]

  memory_size                    = each.value.memory_size
  timeout                        = each.value.timeout
  reserved_concurrent_executions = each.value.reserved_concurrency
  # A version per change only for tasks behind the "live" alias (SnapStart, provisioned concurrency; alias.tf).
  publish = contains(local.aliased_tasks, each.key)

  ephemeral_storage {
    size = each.value.ephemeral_storage
  }

  # SnapStart (var.snap_start_tasks): Lambda inits each published version once and snapshots it.
  dynamic "snap_start" {
    for_each = contains(var.snap_start_tasks, each.key) ? [1] : []
    content {
      apply_on = "PublishedVersions"
    }
  }

  environment {
    variables = local.function_environment[each.key]
  }
  kms_key_arn = local.kms_key_arn

  # Active (Lambda samples and sends the segment the X-Ray SDK adds to) only when tracing with X-Ray;
  # PassThrough otherwise: no X-Ray segments billed for OpenTelemetry or no tracing.
  tracing_config {
    mode = var.tracing == "xray" ? "Active" : "PassThrough"
  }

  vpc_config {
    subnet_ids         = local.private_subnet_ids
    security_group_ids = [aws_security_group.function.id]
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dlq[each.key].arn
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  tags = merge(local.tags, { "docfn:task" = each.key })

  depends_on = [
    aws_iam_role_policy.function,
    aws_iam_role_policy_attachment.vpc_access,
    aws_ecr_repository_policy.this,
  ]
}

resource "aws_lambda_function_url" "this" {
  for_each = local.tasks

  function_name      = aws_lambda_function.this[each.key].function_name
  qualifier          = local.invoke_qualifiers[each.key]
  authorization_type = var.function_url_auth_type
  invoke_mode        = "BUFFERED"

  dynamic "cors" {
    for_each = length(var.cors.allow_origins) > 0 ? [var.cors] : []
    content {
      allow_origins     = cors.value.allow_origins
      allow_methods     = cors.value.allow_methods
      allow_headers     = cors.value.allow_headers
      expose_headers    = cors.value.expose_headers
      allow_credentials = cors.value.allow_credentials
      max_age           = cors.value.max_age
    }
  }
}

# Public URLs only by explicit opt-in (function_url_auth_type = "NONE"). URLs created since
# October 2025 need both statements. With AWS_IAM, callers get both actions from the
# invoke policy (aws_iam_policy.invoke) instead.
resource "aws_lambda_permission" "function_url_public" {
  #checkov:skip=CKV_AWS_301:Only created when function_url_auth_type = "NONE" is set explicitly; the default is AWS_IAM.
  for_each = var.function_url_auth_type == "NONE" ? local.tasks : {}

  statement_id           = "DocfnPublicFunctionUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.this[each.key].function_name
  qualifier              = local.invoke_qualifiers[each.key]
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_lambda_permission" "function_url_public_invoke" {
  #checkov:skip=CKV_AWS_301:Only created when function_url_auth_type = "NONE" is set explicitly; the default is AWS_IAM.
  for_each = var.function_url_auth_type == "NONE" ? local.tasks : {}

  statement_id             = "DocfnPublicFunctionUrlInvoke"
  action                   = "lambda:InvokeFunction"
  function_name            = aws_lambda_function.this[each.key].function_name
  qualifier                = local.invoke_qualifiers[each.key]
  principal                = "*"
  invoked_via_function_url = true
}
