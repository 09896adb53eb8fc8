output "function_urls" {
  description = "Function URL per task."
  value       = module.docfn.function_urls
}

output "api_endpoint" {
  description = "HTTP API endpoint."
  value       = module.docfn.api_endpoint
}

output "ecr_repository_urls" {
  description = "Push the task images here."
  value       = module.docfn.ecr_repository_urls
}

output "bucket_name" {
  description = "TTL bucket (publish model packs under models/)."
  value       = module.docfn.bucket_name
}

output "model_packs" {
  description = "The model packs (\"<name>/<version>\") to publish to the bucket before the first request."
  value       = module.docfn.model_packs
}

output "cache_endpoint" {
  description = "Cache endpoint."
  value       = module.docfn.cache_endpoint
}

output "queue_urls" {
  description = "Upload event queues."
  value       = module.docfn.queue_urls
}

output "invoke_policy_arn" {
  description = "Attach to the callers of the API and function URLs."
  value       = module.docfn.invoke_policy_arn
}

output "web_bundle_url" {
  description = "HTTPS URL of the static in-browser OCR page (null without web_bundle_dir)."
  value       = module.docfn.web_bundle_url
}
