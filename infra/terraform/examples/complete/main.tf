provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project = "docfn"
      example = "complete"
    }
  }
}

# Alarm notifications (optional e-mail subscription).
resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

module "docfn" {
  source = "../../"

  name      = var.name
  image_tag = var.image_tag

  # All eight tasks (the module's default set) with its defaults, except a larger OCR batch window and
  # an explicit body limit on the synchronous OCR path. Every pack named here must be published
  # to s3://<bucket>/models/ before the first request (output model_packs; see the README): the
  # VLM pack of formula and chart is exported from MinerU2.5's weights (docs/vlm-blocks.md).
  tasks = {
    ocr = {
      memory_size                        = 2048
      timeout                            = 60
      model_pack                         = "ocr-ppocrv6-tiny/2"
      batch_size                         = 5
      maximum_batching_window_in_seconds = 2
      environment                        = { DOCFN_MAX_BODY_BYTES = "20971520" }
    }
    layout    = { memory_size = 2048, timeout = 60, model_pack = "layout-cdla/2" }
    table     = { memory_size = 3008, timeout = 120, ephemeral_storage = 2048, model_pack = "ocr-ppocrv6-tiny/2" }
    parse     = { memory_size = 3008, timeout = 300, ephemeral_storage = 4096, model_pack = "layout-cdla/2", role_packs = { ocr = "ocr-ppocrv6-tiny/2", table_structure = "table-slanet-plus/1" } }
    formula   = { memory_size = 8192, timeout = 120, ephemeral_storage = 8192, role_packs = { vlm = "vlm-mineru25-int8/1" } }
    chart     = { memory_size = 8192, timeout = 120, ephemeral_storage = 8192, role_packs = { vlm = "vlm-mineru25-int8/1" } }
    vlm       = { memory_size = 10240, timeout = 900, ephemeral_storage = 10240, model_pack = "vlm-mineru25-int8/1" }
    summarize = { memory_size = 3008, timeout = 300, ephemeral_storage = 4096, role_packs = { layout = "layout-cdla/2", ocr = "ocr-ppocrv6-tiny/2", table_structure = "table-slanet-plus/1" } }
  }

  # Uploads and results live one day; model packs forever.
  upload_expiration_days = 1
  result_expiration_days = 1

  # Front door with a gateway-wide rate limit; SigV4 (AWS_IAM) on routes and function URLs.
  create_api_gateway         = true
  api_throttling_rate_limit  = 20
  api_throttling_burst_limit = 40
  domain_name                = var.domain_name
  route53_zone_id            = var.route53_zone_id
  cors = {
    allow_origins = ["https://app.example.com"]
  }

  # Valkey, Multi-AZ, two nodes. Set cache_serverless = true for the cheapest idle bill.
  cache_engine             = "valkey"
  cache_num_cache_clusters = 2

  alarm_sns_topic_arn = aws_sns_topic.alarms.arn

  # The in-browser OCR page as a static site on CloudFront, from the folder `docfn export-web DIR`
  # wrote: on when web_bundle_dir is set (-var web_bundle_dir=$PWD/web-bundle), off otherwise.
  web_bundle = {
    enabled    = var.web_bundle_dir != null
    source_dir = var.web_bundle_dir
  }

  tags = {
    owner = "platform"
  }
}
