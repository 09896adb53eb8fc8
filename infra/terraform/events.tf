################################################################################
# Upload events: s3://BUCKET/uploads/<task>/... -> SQS queue of <task> (+ DLQ) -> function.
# Only uploads/ is wired: functions write their output to results/, so it cannot trigger them
# again. uploads/ holds inputs only: presigned PUTs (POST /v1/uploads) and the files of MinerU's
# POST /v1/tasks, which the parse function writes there once for this event to run them.
################################################################################

resource "aws_sqs_queue" "dlq" {
  for_each = local.tasks

  name                              = "${local.function_names[each.key]}-dlq"
  message_retention_seconds         = var.dlq_message_retention_seconds
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = local.use_kms ? 3600 : null
  sqs_managed_sse_enabled           = local.use_kms ? null : true

  tags = local.tags
}

resource "aws_sqs_queue" "this" {
  for_each = local.tasks

  name = local.function_names[each.key]
  # AWS's guidance for Lambda event sources: at least six times the function timeout.
  visibility_timeout_seconds        = min(43200, max(30, each.value.timeout * 6))
  message_retention_seconds         = min(1209600, 86400 * var.upload_expiration_days)
  receive_wait_time_seconds         = 20
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = local.use_kms ? 3600 : null
  sqs_managed_sse_enabled           = local.use_kms ? null : true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[each.key].arn
    maxReceiveCount     = var.queue_max_receive_count
  })

  tags = local.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  for_each = local.tasks

  queue_url = aws_sqs_queue.dlq[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this[each.key].arn]
  })
}

data "aws_iam_policy_document" "queue" {
  for_each = local.tasks

  statement {
    sid       = "S3UploadEvents"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.this[each.key].arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.this.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  dynamic "statement" {
    for_each = var.s3_events_via_eventbridge ? [1] : []
    content {
      sid       = "EventBridgeUploadEvents"
      effect    = "Allow"
      actions   = ["sqs:SendMessage"]
      resources = [aws_sqs_queue.this[each.key].arn]
      principals {
        type        = "Service"
        identifiers = ["events.amazonaws.com"]
      }
      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [aws_cloudwatch_event_rule.upload[each.key].arn]
      }
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"]
    resources = [aws_sqs_queue.this[each.key].arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "this" {
  for_each = local.tasks

  queue_url = aws_sqs_queue.this[each.key].id
  policy    = data.aws_iam_policy_document.queue[each.key].json
}

# Direct S3 -> SQS notifications (default), or EventBridge delivery when
# s3_events_via_eventbridge is on (then the queue blocks are left out so no upload is
# delivered twice).
resource "aws_s3_bucket_notification" "this" {
  bucket      = aws_s3_bucket.this.id
  eventbridge = var.s3_events_via_eventbridge

  dynamic "queue" {
    for_each = var.s3_events_via_eventbridge ? {} : local.tasks
    content {
      id            = "${queue.key}-uploads"
      queue_arn     = aws_sqs_queue.this[queue.key].arn
      events        = ["s3:ObjectCreated:*"]
      filter_prefix = "${local.uploads_prefix}${queue.key}/"
    }
  }

  depends_on = [aws_sqs_queue_policy.this]
}

resource "aws_cloudwatch_event_rule" "upload" {
  for_each = var.s3_events_via_eventbridge ? local.tasks : {}

  name        = "${local.function_names[each.key]}-uploads"
  description = "Object Created under uploads/${each.key}/ in ${local.bucket_name}"

  event_pattern = jsonencode({
    source      = ["aws.s3"]
    detail-type = ["Object Created"]
    detail = {
      bucket = { name = [aws_s3_bucket.this.id] }
      object = { key = [{ prefix = "${local.uploads_prefix}${each.key}/" }] }
    }
  })

  tags = local.tags
}

resource "aws_cloudwatch_event_target" "upload" {
  for_each = var.s3_events_via_eventbridge ? local.tasks : {}

  rule      = aws_cloudwatch_event_rule.upload[each.key].name
  target_id = "${each.key}-queue"
  arn       = aws_sqs_queue.this[each.key].arn
}

resource "aws_lambda_event_source_mapping" "this" {
  for_each = local.tasks

  event_source_arn                   = aws_sqs_queue.this[each.key].arn
  function_name                      = local.invoke_arns[each.key]
  batch_size                         = each.value.batch_size
  maximum_batching_window_in_seconds = each.value.maximum_batching_window_in_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  # Never run more pollers than the function may have containers (minimum allowed is 2).
  dynamic "scaling_config" {
    for_each = each.value.reserved_concurrency >= 2 ? [1] : []
    content {
      maximum_concurrency = each.value.reserved_concurrency
    }
  }

  tags = local.tags
}
