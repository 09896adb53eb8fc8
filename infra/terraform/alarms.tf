################################################################################
# Per-function alarms: errors, throttles (reserved concurrency reached), p99 duration close
# to the timeout, and failed upload events piling up in the dead-letter queue.
################################################################################

locals {
  alarm_actions = var.alarm_sns_topic_arn == null ? [] : [var.alarm_sns_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  for_each = local.tasks

  alarm_name          = "${local.function_names[each.key]}-errors"
  alarm_description   = "docfn ${each.key}: function errors"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.this[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.alarm_errors_threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = local.tags
}

resource "aws_cloudwatch_metric_alarm" "throttles" {
  for_each = local.tasks

  alarm_name          = "${local.function_names[each.key]}-throttles"
  alarm_description   = "docfn ${each.key}: invocations throttled (reserved concurrency ${each.value.reserved_concurrency} reached)"
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = aws_lambda_function.this[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.alarm_throttles_threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = local.tags
}

resource "aws_cloudwatch_metric_alarm" "duration_p99" {
  for_each = local.tasks

  alarm_name          = "${local.function_names[each.key]}-duration-p99"
  alarm_description   = "docfn ${each.key}: p99 duration above ${var.alarm_duration_p99_ratio * 100}% of the ${each.value.timeout}s timeout"
  namespace           = "AWS/Lambda"
  metric_name         = "Duration"
  dimensions          = { FunctionName = aws_lambda_function.this[each.key].function_name }
  extended_statistic  = "p99"
  period              = 300
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  threshold           = each.value.timeout * 1000 * var.alarm_duration_p99_ratio
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = local.tags
}

resource "aws_cloudwatch_metric_alarm" "dlq" {
  for_each = local.tasks

  alarm_name          = "${local.function_names[each.key]}-dlq"
  alarm_description   = "docfn ${each.key}: upload events failed ${var.queue_max_receive_count} times and are in the dead-letter queue"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq[each.key].name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = local.tags
}
