################################################################################
# The "live" alias of each task in local.aliased_tasks (warmth.tf): SnapStart only snapshots
# published versions, and provisioned concurrency lives on a version or alias, never on $LATEST.
# aws_lambda_function.this publishes a new version on every change of such a task; the alias
# follows it, and the function URL, HTTP API integration and SQS mapping call the alias.
################################################################################

resource "aws_lambda_alias" "live" {
  for_each = local.aliased_tasks

  name             = local.live_alias
  description      = "docfn ${each.key}: the published version the triggers call"
  function_name    = aws_lambda_function.this[each.key].function_name
  function_version = aws_lambda_function.this[each.key].version
}

resource "aws_lambda_provisioned_concurrency_config" "live" {
  for_each = var.provisioned_concurrency

  function_name                     = aws_lambda_function.this[each.key].function_name
  qualifier                         = aws_lambda_alias.live[each.key].name
  provisioned_concurrent_executions = each.value
}

locals {
  # What a trigger invokes: the alias when there is one, else the unqualified function ($LATEST).
  invoke_arns = {
    for task in keys(local.tasks) : task => contains(local.aliased_tasks, task) ? aws_lambda_alias.live[task].arn : aws_lambda_function.this[task].arn
  }
  invoke_uris = {
    for task in keys(local.tasks) : task => contains(local.aliased_tasks, task) ? aws_lambda_alias.live[task].invoke_arn : aws_lambda_function.this[task].invoke_arn
  }
  invoke_qualifiers = {
    for task in keys(local.tasks) : task => contains(local.aliased_tasks, task) ? aws_lambda_alias.live[task].name : null
  }
}
