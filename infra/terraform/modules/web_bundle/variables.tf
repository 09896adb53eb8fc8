variable "name" {
  description = "Name prefix of the bucket, the origin access control and the response headers policy."
  type        = string
  default     = "docfn"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}[a-z0-9]$", var.name))
    error_message = "name must be 2-32 lowercase letters, digits or hyphens (it prefixes a bucket name)."
  }
}

variable "source_dir" {
  description = "The folder `docfn export-web DIR` wrote (index.html, app.js, style.css, ocr/, pack/): every file in it is uploaded."
  type        = string

  validation {
    condition     = fileexists("${var.source_dir}/index.html")
    error_message = "source_dir must be a folder written by `docfn export-web` (it has no index.html)."
  }
}

variable "bucket_name" {
  description = "Name of the bucket that holds the bundle (null: a unique name that starts with \"<name>-web-\")."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name."
  }
}

variable "force_destroy" {
  description = "Let terraform destroy empty the bucket (including old versions of the bundle's files)."
  type        = bool
  default     = false
}

variable "noncurrent_version_expiration_days" {
  description = "Days an overwritten or deleted file of the bundle is kept as a noncurrent version."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "access_log_bucket" {
  description = "Bucket that receives the bundle bucket's S3 server access logs (null: no access logs)."
  type        = string
  default     = null
}

variable "max_age_seconds" {
  description = "Cache-Control max-age of every file but index.html (which is sent with no-cache, so a new bundle is picked up on the next visit)."
  type        = number
  default     = 300

  validation {
    condition     = var.max_age_seconds >= 0 && var.max_age_seconds <= 31536000
    error_message = "max_age_seconds must be between 0 and 31536000 (one year)."
  }
}

variable "content_types" {
  description = "Extra or overriding Content-Type per file extension (lowercase, no dot), merged over the built-in map; a file whose extension has no type is refused at plan time."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for ext, type in var.content_types : can(regex("^[a-z0-9]+$", ext)) && can(regex("^[a-z]+/[A-Za-z0-9.+-]+", type))])
    error_message = "content_types maps a lowercase extension without its dot to a MIME type such as text/plain."
  }
}

variable "price_class" {
  description = "CloudFront price class of the distribution."
  type        = string
  default     = "PriceClass_100"

  validation {
    condition     = contains(["PriceClass_100", "PriceClass_200", "PriceClass_All"], var.price_class)
    error_message = "price_class must be PriceClass_100, PriceClass_200 or PriceClass_All."
  }
}

variable "aliases" {
  description = "Custom domain names of the distribution (they need acm_certificate_arn); empty: the cloudfront.net name only."
  type        = list(string)
  default     = []
}

variable "acm_certificate_arn" {
  description = "ACM certificate (in us-east-1) for aliases; null: CloudFront's default *.cloudfront.net certificate."
  type        = string
  default     = null

  validation {
    condition     = var.acm_certificate_arn == null || can(regex("^arn:aws[a-z-]*:acm:us-east-1:[0-9]{12}:certificate/", var.acm_certificate_arn))
    error_message = "acm_certificate_arn must be an ACM certificate ARN in us-east-1 (CloudFront only uses certificates from there)."
  }
}

variable "web_acl_id" {
  description = "ARN of a WAFv2 web ACL (scope CLOUDFRONT) to put in front of the distribution (null: none)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource that supports them."
  type        = map(string)
  default     = {}
}
