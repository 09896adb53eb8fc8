################################################################################
# Optional: the static bundle of `docfn export-web DIR` (the in-browser OCR page) in a private
# S3 bucket behind CloudFront (modules/web_bundle). Off by default: nothing is created unless
# web_bundle.enabled is true. It needs none of the functions: the page reads in the browser.
################################################################################

module "web_bundle" {
  source = "./modules/web_bundle"
  count  = var.web_bundle.enabled ? 1 : 0

  name                               = var.name
  source_dir                         = var.web_bundle.source_dir
  bucket_name                        = var.web_bundle.bucket_name
  force_destroy                      = var.bucket_force_destroy
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  access_log_bucket                  = var.access_log_bucket
  max_age_seconds                    = var.web_bundle.max_age_seconds
  content_types                      = var.web_bundle.content_types
  price_class                        = var.web_bundle.price_class
  aliases                            = var.web_bundle.aliases
  acm_certificate_arn                = var.web_bundle.acm_certificate_arn
  web_acl_id                         = var.web_bundle.web_acl_id

  tags = local.tags
}
