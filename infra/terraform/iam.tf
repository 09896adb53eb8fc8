################################################################################
# One role per function, least privilege: its own log group, the bucket prefixes it needs,
# its own queue (and DLQ), X-Ray, the cache auth token secret, the key, its VPC ENIs.
################################################################################

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    sid     = "LambdaAssumeRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = local.tasks

  name                 = "${local.function_names[each.key]}-function"
  description          = "docfn ${each.key} function"
  assume_role_policy   = data.aws_iam_policy_document.assume_lambda.json
  max_session_duration = 3600

  tags = local.tags
}

data "aws_iam_policy_document" "function" {
  for_each = local.tasks

  statement {
    sid       = "OwnLogGroup"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }

  statement {
    sid       = "ReadModelPacks"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this.arn}/${local.models_prefix}*"]
  }

  # Reads its own inputs and presigns uploads for its task. The jobs function answers
  # POST /v1/uploads for every task, so it may presign under all of uploads/.
  statement {
    sid     = "ReadAndPresignUploads"
    effect  = "Allow"
    actions = ["s3:GetObject", "s3:PutObject"]
    resources = [
      each.key == var.jobs_task
      ? "${aws_s3_bucket.this.arn}/${local.uploads_prefix}*"
      : "${aws_s3_bucket.this.arn}/${local.uploads_prefix}${each.key}/*"
    ]
  }

  statement {
    sid       = "ReadWriteResults"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.this.arn}/${local.results_prefix}*"]
  }

  statement {
    sid       = "ListOwnPrefixes"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values = [
        "${local.models_prefix}*",
        "${local.results_prefix}*",
        each.key == var.jobs_task ? "${local.uploads_prefix}*" : "${local.uploads_prefix}${each.key}/*",
      ]
    }
  }

  statement {
    sid    = "ConsumeOwnQueue"
    effect = "Allow"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ReceiveMessage",
    ]
    resources = [aws_sqs_queue.this[each.key].arn]
  }

  # Failed asynchronous invocations (EventBridge or direct invokes) land in the DLQ.
  statement {
    sid       = "DeadLetterOwnQueue"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq[each.key].arn]
  }

  # X-Ray has no resource-level permissions: these two actions only work on "*".
  statement {
    sid       = "XRayTraces"
    effect    = "Allow"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  statement {
    sid       = "CacheAuthToken"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.cache_auth.arn]
  }

  # The secrets the task's own environment names (function_secrets.tf), and only those.
  dynamic "statement" {
    for_each = length(local.task_secret_arns[each.key]) > 0 ? [1] : []
    content {
      sid       = "EnvironmentSecrets"
      effect    = "Allow"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = local.task_secret_arns[each.key]
    }
  }

  dynamic "statement" {
    for_each = local.use_kms ? [1] : []
    content {
      sid       = "UseDataKey"
      effect    = "Allow"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [local.kms_key_arn]
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.tasks

  name   = "docfn-${each.key}"
  role   = aws_iam_role.this[each.key].id
  policy = data.aws_iam_policy_document.function[each.key].json
}

# ENI management for VPC access, without the log permissions on every log group that
# AWSLambdaVPCAccessExecutionRole carries.
resource "aws_iam_role_policy_attachment" "vpc_access" {
  for_each = local.tasks

  role       = aws_iam_role.this[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaENIManagementAccess"
}

################################################################################
# A managed policy for clients: attach it to the roles/users that call the function URLs
# and the HTTP API with SigV4 (the AWS_IAM default).
################################################################################

data "aws_iam_policy_document" "invoke" {
  statement {
    sid       = "InvokeFunctionUrls"
    effect    = "Allow"
    actions   = ["lambda:InvokeFunctionUrl", "lambda:InvokeFunction"]
    resources = distinct(concat([for task in keys(local.tasks) : aws_lambda_function.this[task].arn], values(local.invoke_arns)))
  }

  dynamic "statement" {
    for_each = var.create_api_gateway ? [1] : []
    content {
      sid       = "InvokeHttpApi"
      effect    = "Allow"
      actions   = ["execute-api:Invoke"]
      resources = ["${aws_apigatewayv2_api.this[0].execution_arn}/*"]
    }
  }
}

resource "aws_iam_policy" "invoke" {
  name        = "${var.name}-invoke"
  description = "Call the docfn ${var.name} function URLs and HTTP API"
  policy      = data.aws_iam_policy_document.invoke.json

  tags = local.tags
}
