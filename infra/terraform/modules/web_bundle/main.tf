################################################################################
# The static bundle of `docfn export-web DIR` (the in-browser OCR page, its scripts, the WASM
# runtime and the OCR pack) in a private S3 bucket behind CloudFront.
#
# The bucket is reachable only through the distribution (origin access control, SigV4); the
# distribution redirects HTTP to HTTPS, compresses what CloudFront compresses, and answers every
# response with the headers that make the page cross-origin isolated (COOP same-origin, COEP
# require-corp, CORP same-origin), which WebAssembly threads need.
################################################################################

locals {
  tags = merge({ "app" = "docfn", "docfn:part" = "web-bundle" }, var.tags)

  # Content-Type per file extension. onnxruntime-web streams its .wasm with
  # WebAssembly.instantiateStreaming, which accepts application/wasm only; .mjs/.js load as
  # module scripts, which need a JavaScript type. The pack's files are verified byte for byte in
  # the page (sha256 from pack/manifest.json), so models go as opaque bytes.
  builtin_content_types = {
    html = "text/html; charset=utf-8"
    css  = "text/css; charset=utf-8"
    js   = "text/javascript; charset=utf-8"
    mjs  = "text/javascript; charset=utf-8"
    json = "application/json"
    wasm = "application/wasm"
    onnx = "application/octet-stream"
    txt  = "text/plain; charset=utf-8"
    md   = "text/markdown; charset=utf-8"
  }
  content_types = merge(local.builtin_content_types, var.content_types)

  # Every file of the bundle: key => its extension ("" when it has none).
  files = {
    for path in fileset(var.source_dir, "**") : path => lower(try(regex("\\.([^./]+)$", path)[0], ""))
  }

  # The entry page must not be cached: it names the files a new bundle brings.
  cache_control = {
    for path in keys(local.files) : path => path == "index.html" ? "no-cache" : "public, max-age=${var.max_age_seconds}"
  }

  # AWS managed cache policy "Managed-CachingOptimized": no cookies or query strings in the cache
  # key, gzip and Brotli on (so `compress` works); TTL 1 s..1 year, from the objects' Cache-Control.
  caching_optimized_policy_id = "658327ea-f89d-4fab-a63d-7e88639e58f6"

  # Cross-origin isolation (self.crossOriginIsolated): what SharedArrayBuffer, and so
  # onnxruntime-web's WASM threads, need. Everything the page loads is same-origin.
  isolation_headers = {
    "Cross-Origin-Opener-Policy"   = "same-origin"
    "Cross-Origin-Embedder-Policy" = "require-corp"
    "Cross-Origin-Resource-Policy" = "same-origin"
  }

  origin_id = "s3-bundle"
}

################################################################################
# Bucket: private, encrypted, versioned, TLS-only, readable by the distribution alone
################################################################################

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_144:The bundle is rebuilt by `docfn export-web` and uploaded by this module; replicating it to a second region adds nothing.
  #checkov:skip=CKV_AWS_145:SSE-S3, not SSE-KMS: CloudFront would need kms:Decrypt on a customer key to serve public static files, for no gain.
  #checkov:skip=CKV2_AWS_62:Nothing consumes events of a static bundle: its objects change only on terraform apply.
  bucket        = var.bucket_name
  bucket_prefix = var.bucket_name == null ? "${var.name}-web-" : null
  force_destroy = var.force_destroy

  tags = local.tags
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "housekeeping"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    expiration {
      expired_object_delete_marker = true
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_logging" "this" {
  count = var.access_log_bucket != null ? 1 : 0

  bucket        = aws_s3_bucket.this.id
  target_bucket = var.access_log_bucket
  target_prefix = "s3/${aws_s3_bucket.this.id}/"
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid       = "AllowDistributionRead"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this.arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.this.arn]
    }
  }

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.this.arn,
      "${aws_s3_bucket.this.arn}/*",
    ]
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

  statement {
    sid     = "DenyOutdatedTls"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.this.arn,
      "${aws_s3_bucket.this.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.bucket.json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

################################################################################
# The bundle's files
################################################################################

resource "aws_s3_object" "this" {
  for_each = local.files

  bucket        = aws_s3_bucket.this.id
  key           = each.key
  source        = "${var.source_dir}/${each.key}"
  source_hash   = filemd5("${var.source_dir}/${each.key}")
  content_type  = lookup(local.content_types, each.value, null)
  cache_control = local.cache_control[each.key]

  tags = local.tags

  lifecycle {
    precondition {
      condition     = contains(keys(local.content_types), each.value)
      error_message = "No Content-Type for ${each.key} (extension \"${each.value}\"): add it to content_types."
    }
  }

  depends_on = [aws_s3_bucket_server_side_encryption_configuration.this]
}

################################################################################
# CloudFront
################################################################################

resource "aws_cloudfront_origin_access_control" "this" {
  name                              = "${var.name}-web-bundle"
  description                       = "CloudFront signs every request to the docfn web bundle bucket (SigV4)."
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

resource "aws_cloudfront_response_headers_policy" "this" {
  #checkov:skip=CKV_AWS_259:HSTS is sent for a year with includeSubDomains; preload (a request to hard-code HTTPS for the whole registrable domain in browsers) is the domain owner's decision, not this module's.
  name    = "${var.name}-web-bundle-isolation"
  comment = "Cross-origin isolation (COOP, COEP, CORP) and security headers for the docfn web bundle."

  custom_headers_config {
    dynamic "items" {
      for_each = local.isolation_headers
      content {
        header   = items.key
        value    = items.value
        override = true
      }
    }
  }

  security_headers_config {
    content_type_options {
      override = true
    }
    frame_options {
      frame_option = "DENY"
      override     = true
    }
    referrer_policy {
      referrer_policy = "same-origin"
      override        = true
    }
    strict_transport_security {
      access_control_max_age_sec = 31536000
      include_subdomains         = true
      override                   = true
    }
  }
}

resource "aws_cloudfront_distribution" "this" {
  #checkov:skip=CKV_AWS_68:Optional (web_acl_id): a static page with no server side behind it; the caller attaches a WAF if the account requires one.
  #checkov:skip=CKV2_AWS_47:Optional (web_acl_id): the Log4j rule set protects servers, and this origin is a private S3 bucket of static files.
  #checkov:skip=CKV_AWS_86:CloudFront standard logs need an ACL-enabled log bucket; the bundle bucket's S3 access logs are available with access_log_bucket.
  #checkov:skip=CKV_AWS_310:One S3 origin in one region; a failover origin would need a second copy of the bundle for no gain.
  #checkov:skip=CKV_AWS_374:The page is for anyone; geo restriction is a policy decision left to the caller.
  #checkov:skip=CKV_AWS_174:With the default *.cloudfront.net certificate CloudFront fixes the TLS policy; with acm_certificate_arn the module sets TLSv1.2_2021.
  #checkov:skip=CKV2_AWS_42:The default *.cloudfront.net certificate is fine for the bundle; set aliases and acm_certificate_arn for a custom domain.
  enabled             = true
  is_ipv6_enabled     = true
  http_version        = "http2and3"
  comment             = "docfn web bundle (${var.name})"
  default_root_object = "index.html"
  price_class         = var.price_class
  aliases             = var.aliases
  web_acl_id          = var.web_acl_id

  origin {
    origin_id                = local.origin_id
    domain_name              = aws_s3_bucket.this.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.this.id
  }

  default_cache_behavior {
    target_origin_id           = local.origin_id
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    viewer_protocol_policy     = "redirect-to-https"
    compress                   = true
    cache_policy_id            = local.caching_optimized_policy_id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.this.id
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = var.acm_certificate_arn == null
    acm_certificate_arn            = var.acm_certificate_arn
    ssl_support_method             = var.acm_certificate_arn == null ? null : "sni-only"
    minimum_protocol_version       = var.acm_certificate_arn == null ? "TLSv1" : "TLSv1.2_2021"
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = length(var.aliases) == 0 || var.acm_certificate_arn != null
      error_message = "aliases need acm_certificate_arn (a certificate in us-east-1 that covers them)."
    }
  }
}
