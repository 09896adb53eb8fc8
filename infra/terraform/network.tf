################################################################################
# Network: private subnets only. No NAT gateway: S3 is reached through the free gateway
# endpoint, Secrets Manager (and X-Ray) through interface endpoints, the cache directly.
# Lambda pulls images, ships logs and polls SQS from the service side, outside the VPC.
################################################################################

# The zones are pinned by name (CKV_AWS_394): var.availability_zones, else the region's zones
# a-f. Nothing here depends on a zone's current state or on zones AWS adds later, so the
# subnets (and the functions' ENIs in them) never move on their own.
data "aws_availability_zones" "available" {
  count = var.create_vpc ? 1 : 0

  filter {
    name   = "zone-name"
    values = length(var.availability_zones) > 0 ? var.availability_zones : [for letter in ["a", "b", "c", "d", "e", "f"] : "${local.region}${letter}"]
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) >= var.az_count && length(self.names) >= length(var.availability_zones)
      error_message = "Fewer availability zones than az_count (or an unknown name in availability_zones) in this region."
    }
  }
}

data "aws_vpc" "existing" {
  count = var.create_vpc ? 0 : 1

  id = var.vpc_id
}

locals {
  vpc_id                  = var.create_vpc ? aws_vpc.this[0].id : var.vpc_id
  vpc_cidr                = var.create_vpc ? aws_vpc.this[0].cidr_block : data.aws_vpc.existing[0].cidr_block
  private_subnet_ids      = var.create_vpc ? aws_subnet.private[*].id : var.private_subnet_ids
  private_route_table_ids = var.create_vpc ? [aws_route_table.private[0].id] : var.private_route_table_ids
  azs                     = var.create_vpc ? slice(length(var.availability_zones) > 0 ? var.availability_zones : sort(data.aws_availability_zones.available[0].names), 0, var.az_count) : []
}

resource "aws_vpc" "this" {
  count = var.create_vpc ? 1 : 0

  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true # private DNS of the interface endpoints

  tags = merge(local.tags, { Name = var.name })
}

# Lock down the VPC's default security group (nothing uses it).
resource "aws_default_security_group" "this" {
  count = var.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[count.index].id

  tags = merge(local.tags, { Name = "${var.name}-default-unused" })
}

resource "aws_subnet" "private" {
  count = var.create_vpc ? var.az_count : 0

  vpc_id                  = aws_vpc.this[0].id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(var.vpc_cidr, 4, count.index)
  map_public_ip_on_launch = false

  tags = merge(local.tags, { Name = "${var.name}-private-${local.azs[count.index]}" })
}

resource "aws_route_table" "private" {
  count = var.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id

  tags = merge(local.tags, { Name = "${var.name}-private" })
}

resource "aws_route_table_association" "private" {
  count = var.create_vpc ? var.az_count : 0

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[0].id
}

resource "aws_cloudwatch_log_group" "flow_log" {
  count = var.create_vpc && var.enable_flow_log ? 1 : 0

  name              = "/aws/vpc/${var.name}/flow-log"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = local.kms_key_arn

  tags = local.tags
}

data "aws_iam_policy_document" "flow_log_assume" {
  statement {
    sid     = "VpcFlowLogsAssumeRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "flow_log" {
  count = var.create_vpc && var.enable_flow_log ? 1 : 0

  statement {
    sid       = "WriteFlowLogGroup"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.flow_log[0].arn}:*"]
  }
}

resource "aws_iam_role" "flow_log" {
  count = var.create_vpc && var.enable_flow_log ? 1 : 0

  name               = "${var.name}-vpc-flow-log"
  assume_role_policy = data.aws_iam_policy_document.flow_log_assume.json

  tags = local.tags
}

resource "aws_iam_role_policy" "flow_log" {
  count = var.create_vpc && var.enable_flow_log ? 1 : 0

  name   = "vpc-flow-log"
  role   = aws_iam_role.flow_log[0].id
  policy = data.aws_iam_policy_document.flow_log[0].json
}

resource "aws_flow_log" "this" {
  count = var.create_vpc && var.enable_flow_log ? 1 : 0

  vpc_id               = aws_vpc.this[count.index].id
  traffic_type         = "ALL"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow_log[0].arn
  iam_role_arn         = aws_iam_role.flow_log[0].arn

  tags = local.tags
}

################################################################################
# Endpoints
################################################################################

resource "aws_vpc_endpoint" "s3" {
  count = var.create_s3_gateway_endpoint ? 1 : 0

  vpc_id            = local.vpc_id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = local.private_route_table_ids

  tags = merge(local.tags, { Name = "${var.name}-s3" })
}

# Created even when no interface endpoint is (an unused security group costs nothing).
resource "aws_security_group" "endpoints" {
  name        = "${var.name}-endpoints"
  description = "docfn interface VPC endpoints: HTTPS from the functions"
  vpc_id      = local.vpc_id

  tags = merge(local.tags, { Name = "${var.name}-endpoints" })
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_functions" {
  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from the docfn functions"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.function.id
}

resource "aws_vpc_endpoint" "interface" {
  for_each = var.create_interface_endpoints ? toset(var.interface_endpoint_services) : toset([])

  vpc_id              = local.vpc_id
  service_name        = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = local.private_subnet_ids
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = true

  tags = merge(local.tags, { Name = "${var.name}-${each.key}" })
}

################################################################################
# Security groups
################################################################################

resource "aws_security_group" "function" {
  name        = "${var.name}-functions"
  description = "docfn functions: egress to the cache, S3 and the VPC endpoints only"
  vpc_id      = local.vpc_id

  tags = merge(local.tags, { Name = "${var.name}-functions" })
}

resource "aws_vpc_security_group_egress_rule" "function_to_cache" {
  security_group_id            = aws_security_group.function.id
  description                  = "Valkey/Redis over TLS to the cache"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6380
  referenced_security_group_id = aws_security_group.cache.id
}

resource "aws_vpc_security_group_egress_rule" "function_to_s3" {
  count = var.create_s3_gateway_endpoint ? 1 : 0

  security_group_id = aws_security_group.function.id
  description       = "HTTPS to S3 through the gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3[0].prefix_list_id
}

resource "aws_vpc_security_group_egress_rule" "function_to_vpc_https" {
  security_group_id = aws_security_group.function.id
  description       = "HTTPS to interface endpoints inside the VPC"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = local.vpc_cidr
}

resource "aws_vpc_security_group_egress_rule" "function_extra_https" {
  for_each = toset(var.function_egress_cidr_blocks)

  security_group_id = aws_security_group.function.id
  description       = "HTTPS to ${each.key} (function_egress_cidr_blocks)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.key
}

resource "aws_security_group" "cache" {
  name        = "${var.name}-cache"
  description = "docfn cache: Valkey/Redis from the functions only"
  vpc_id      = local.vpc_id

  tags = merge(local.tags, { Name = "${var.name}-cache" })
}

resource "aws_vpc_security_group_ingress_rule" "cache_from_functions" {
  security_group_id            = aws_security_group.cache.id
  description                  = "Valkey/Redis (6379; 6380 is the serverless reader port) from the functions"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6380
  referenced_security_group_id = aws_security_group.function.id
}
