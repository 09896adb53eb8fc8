variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "name" {
  description = "Name prefix of the stack."
  type        = string
  default     = "docfn"
}

variable "image_tag" {
  description = "Image tag pushed to every <name>-<task> ECR repository."
  type        = string
  default     = "0.1.0"
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (null: no subscription)."
  type        = string
  default     = null
}

variable "domain_name" {
  description = "Optional custom domain of the HTTP API."
  type        = string
  default     = null
}

variable "route53_zone_id" {
  description = "Route 53 zone of domain_name (certificate validation and alias record)."
  type        = string
  default     = null
}

variable "web_bundle_dir" {
  description = "Folder written by `docfn export-web DIR`, served from S3 behind CloudFront (null: no web bundle)."
  type        = string
  default     = null
}
