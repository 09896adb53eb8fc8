terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Origin access control came in 4.47 and everything here is in 5.0; the root module asks for
      # 6.29 or later, which this floor allows.
      version = ">= 5.0.0, < 7.0.0"
    }
  }
}
