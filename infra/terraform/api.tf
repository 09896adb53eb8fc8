################################################################################
# The HTTPS front door: an HTTP API with POST /v1/<task> and the short alias POST /<task>
# for every deployed task, plus the async upload/job routes (to jobs_task).
# Stage throttling is the gateway rate limit; each function's reserved concurrency is the
# per-task limit behind it. HTTP APIs time out integrations after 30 s: long work goes
# through POST /v1/uploads (S3 event -> queue -> function) or the function URLs (up to 15 min).
################################################################################

locals {
  api_routes = !var.create_api_gateway ? {} : merge(
    { for task in keys(local.tasks) : "POST /v1/${task}" => task },
    { for task in keys(local.tasks) : "POST /${task}" => task },
    {
      "POST /v1/uploads"  = var.jobs_task
      "GET /v1/jobs/{id}" = var.jobs_task
    },
  )

  api_log_format = jsonencode({
    requestId          = "$context.requestId"
    ip                 = "$context.identity.sourceIp"
    requestTime        = "$context.requestTime"
    httpMethod         = "$context.httpMethod"
    routeKey           = "$context.routeKey"
    status             = "$context.status"
    protocol           = "$context.protocol"
    responseLength     = "$context.responseLength"
    integrationLatency = "$context.integrationLatency"
    integrationStatus  = "$context.integrationStatus"
    errorMessage       = "$context.error.message"
  })

  create_domain      = var.create_api_gateway && var.domain_name != null
  create_certificate = local.create_domain && var.certificate_arn == null
}

resource "aws_apigatewayv2_api" "this" {
  count = var.create_api_gateway ? 1 : 0

  name          = var.name
  description   = "docfn document-understanding functions"
  protocol_type = "HTTP"
  # With a custom domain, clients use it; the default endpoint stays for smoke tests.
  disable_execute_api_endpoint = false

  dynamic "cors_configuration" {
    for_each = length(var.cors.allow_origins) > 0 ? [var.cors] : []
    content {
      allow_origins     = cors_configuration.value.allow_origins
      allow_methods     = cors_configuration.value.allow_methods
      allow_headers     = cors_configuration.value.allow_headers
      expose_headers    = cors_configuration.value.expose_headers
      allow_credentials = cors_configuration.value.allow_credentials
      max_age           = cors_configuration.value.max_age
    }
  }

  tags = local.tags
}

resource "aws_apigatewayv2_authorizer" "jwt" {
  count = var.create_api_gateway && var.api_authorization_type == "JWT" ? 1 : 0

  api_id           = aws_apigatewayv2_api.this[0].id
  name             = "${var.name}-jwt"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    issuer   = var.api_jwt_issuer
    audience = var.api_jwt_audience
  }
}

resource "aws_apigatewayv2_integration" "this" {
  for_each = var.create_api_gateway ? local.tasks : {}

  api_id                 = aws_apigatewayv2_api.this[0].id
  description            = "docfn ${each.key}"
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = local.invoke_uris[each.key]
  payload_format_version = "2.0"
  timeout_milliseconds   = 30000
}

resource "aws_apigatewayv2_route" "this" {
  for_each = local.api_routes

  api_id             = aws_apigatewayv2_api.this[0].id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.this[each.value].id}"
  authorization_type = var.api_authorization_type
  authorizer_id      = var.api_authorization_type == "JWT" ? aws_apigatewayv2_authorizer.jwt[0].id : null
}

resource "aws_lambda_permission" "api" {
  for_each = var.create_api_gateway ? local.tasks : {}

  statement_id  = "DocfnHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[each.key].function_name
  qualifier     = local.invoke_qualifiers[each.key]
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this[0].execution_arn}/*/*"
}

resource "aws_cloudwatch_log_group" "api" {
  count = var.create_api_gateway ? 1 : 0

  name              = "/aws/apigateway/${var.name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = local.kms_key_arn

  tags = local.tags
}

resource "aws_apigatewayv2_stage" "this" {
  count = var.create_api_gateway ? 1 : 0

  api_id      = aws_apigatewayv2_api.this[0].id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit    = var.api_throttling_rate_limit
    throttling_burst_limit   = var.api_throttling_burst_limit
    detailed_metrics_enabled = true
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api[0].arn
    format          = local.api_log_format
  }

  tags = local.tags
}

################################################################################
# Optional custom domain: regional ACM certificate (DNS-validated in route53_zone_id, or
# certificate_arn), domain name, API mapping and alias records.
################################################################################

resource "aws_acm_certificate" "api" {
  count = local.create_certificate ? 1 : 0

  domain_name       = var.domain_name
  validation_method = "DNS"

  options {
    certificate_transparency_logging_preference = "ENABLED"
  }

  tags = local.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "certificate_validation" {
  for_each = local.create_certificate ? {
    for dvo in aws_acm_certificate.api[0].domain_validation_options : dvo.domain_name => {
      name   = dvo.resource_record_name
      record = dvo.resource_record_value
      type   = dvo.resource_record_type
    }
  } : {}

  zone_id         = var.route53_zone_id
  name            = each.value.name
  type            = each.value.type
  records         = [each.value.record]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "api" {
  count = local.create_certificate ? 1 : 0

  certificate_arn         = aws_acm_certificate.api[0].arn
  validation_record_fqdns = [for record in aws_route53_record.certificate_validation : record.fqdn]
}

resource "aws_apigatewayv2_domain_name" "this" {
  count = local.create_domain ? 1 : 0

  domain_name = var.domain_name

  domain_name_configuration {
    certificate_arn = local.create_certificate ? aws_acm_certificate_validation.api[0].certificate_arn : var.certificate_arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }

  tags = local.tags
}

resource "aws_apigatewayv2_api_mapping" "this" {
  count = local.create_domain ? 1 : 0

  api_id      = aws_apigatewayv2_api.this[0].id
  domain_name = aws_apigatewayv2_domain_name.this[0].id
  stage       = aws_apigatewayv2_stage.this[0].id
}

resource "aws_route53_record" "api_alias" {
  count = local.create_domain && var.route53_zone_id != null ? 1 : 0

  zone_id = var.route53_zone_id
  name    = var.domain_name
  type    = "A"

  alias {
    name                   = aws_apigatewayv2_domain_name.this[0].domain_name_configuration[0].target_domain_name
    zone_id                = aws_apigatewayv2_domain_name.this[0].domain_name_configuration[0].hosted_zone_id
    evaluate_target_health = false
  }
}
