################################################################################
# One image repository per task: <name>-<task>. Build and push before the functions are
# created (README: "Build and push the images").
################################################################################

resource "aws_ecr_repository" "this" {
  for_each = local.tasks

  name                 = "${var.name}-${each.key}"
  image_tag_mutability = var.ecr_image_tag_mutability
  force_delete         = var.ecr_force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = local.use_kms ? "KMS" : "AES256"
    kms_key         = local.kms_key_arn
  }

  tags = local.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each = local.tasks

  repository = aws_ecr_repository.this[each.key].name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the newest ${var.ecr_keep_images} images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = var.ecr_keep_images
      }
      action = { type = "expire" }
    }]
  })
}

# Lambda pulls the image with this repository policy (what the console would add).
data "aws_iam_policy_document" "ecr" {
  for_each = local.tasks

  statement {
    sid     = "LambdaImageRetrieval"
    effect  = "Allow"
    actions = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "aws:sourceArn"
      values   = ["arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.function_names[each.key]}"]
    }
  }
}

resource "aws_ecr_repository_policy" "this" {
  for_each = local.tasks

  repository = aws_ecr_repository.this[each.key].name
  policy     = data.aws_iam_policy_document.ecr[each.key].json
}
