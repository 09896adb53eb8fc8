################################################################################
# Secrets a function's own environment names by ARN: DOCFN_API_KEY_SECRET_ARN (the Bearer key of
# the VLM's OpenAI-compatible routes) and DOCFN_SUMMARIZE_API_KEY_SECRET_ARN (the key of summarize's
# LLM endpoint), set through tasks.<task>.environment. The function reads them when it starts, so
# its role may read exactly those secrets (iam.tf, statement EnvironmentSecrets) and no others.
#
# Variables only (no provider, no resource attributes): tests/infra evaluates it offline.
################################################################################

locals {
  task_secret_arns = {
    for task, cfg in var.tasks : task => sort(distinct([
      for name, value in cfg.environment : value if endswith(name, "_SECRET_ARN")
    ]))
  }
}
