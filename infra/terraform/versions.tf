terraform {
  # optional() object attributes with defaults need 1.3; 1.5 brings check blocks and import blocks.
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.29 added aws_lambda_permission.invoked_via_function_url (the second permission that
      # function URLs created since October 2025 need when the URL is public).
      version = ">= 6.29.0, < 7.0.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6.0, < 4.0.0"
    }
  }
}
