output "url" {
  description = "HTTPS URL of the page (the distribution's cloudfront.net name)."
  value       = "https://${aws_cloudfront_distribution.this.domain_name}/"
}

output "distribution_domain_name" {
  description = "Domain name of the CloudFront distribution (point a CNAME or alias record for aliases here)."
  value       = aws_cloudfront_distribution.this.domain_name
}

output "distribution_id" {
  description = "ID of the CloudFront distribution (for invalidations)."
  value       = aws_cloudfront_distribution.this.id
}

output "distribution_arn" {
  description = "ARN of the CloudFront distribution (the only principal the bucket policy lets read)."
  value       = aws_cloudfront_distribution.this.arn
}

output "distribution_hosted_zone_id" {
  description = "Route 53 hosted zone ID of the distribution, for alias records."
  value       = aws_cloudfront_distribution.this.hosted_zone_id
}

output "bucket_name" {
  description = "Bucket holding the bundle."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the bucket holding the bundle."
  value       = aws_s3_bucket.this.arn
}

output "response_headers_policy_id" {
  description = "ID of the response headers policy (cross-origin isolation and security headers)."
  value       = aws_cloudfront_response_headers_policy.this.id
}

output "content_types" {
  description = "Content-Type each uploaded file is served with, by key."
  value       = { for key, object in aws_s3_object.this : key => object.content_type }
}
