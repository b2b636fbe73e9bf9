# One ECR repository for one catalog image (its variants share it and differ by tag).
#
# Lifecycle policy. ECR evaluates rules by priority, and an image that matches the tag
# selection of a rule can never be expired by a rule of lower priority. So the first rules
# select released images (every tag pattern in var.promoted_tag_patterns: one rule each,
# because a rule with several patterns only selects images carrying all of them) with a
# count no catalog reaches; then dev builds tagged content-<hash> are kept up to a count;
# then images tagged only staging-<hash>-<nonce> expire some days after their push; last,
# untagged images expire after some days. An image that was built (content-<hash>) and then
# pushed or promoted (X.Y.Z, git-<sha>) carries both kinds of tag: the protecting rule wins.
#
# A build pushes its image under a staging tag of its own, then gives that digest the
# content tag if the tag is free (imagefactory/build/publish.py). Every build's image keeps
# its staging tag, so the content-* rule must come before the staging-* rule: an image that
# also holds content-<hash> (or a release tag) is selected by that rule first and never by
# the staging one. What the staging rule alone selects is what no content tag took: an
# unreproducible rebuild (the registry kept the earlier digest) or an interrupted build.

locals {
  protect_rules = [
    for index, pattern in var.promoted_tag_patterns : {
      rulePriority = index + 1
      description  = "Keep released images (tag ${pattern})"
      selection = {
        tagStatus      = "tagged"
        tagPatternList = [pattern]
        countType      = "imageCountMoreThan"
        countNumber    = var.promoted_images_to_keep
      }
      action = { type = "expire" }
    }
  ]

  dev_rules = [
    {
      rulePriority = 100
      description  = "Keep the last ${var.build_images_to_keep} dev builds (${var.build_tag_prefix}*)"
      selection = {
        tagStatus     = "tagged"
        tagPrefixList = [var.build_tag_prefix]
        countType     = "imageCountMoreThan"
        countNumber   = var.build_images_to_keep
      }
      action = { type = "expire" }
    },
    {
      rulePriority = 150
      description  = "Expire images tagged only ${var.staging_tag_prefix}* after ${var.staging_expiry_days} days"
      selection = {
        tagStatus     = "tagged"
        tagPrefixList = [var.staging_tag_prefix]
        countType     = "sinceImagePushed"
        countUnit     = "days"
        countNumber   = var.staging_expiry_days
      }
      action = { type = "expire" }
    },
    {
      rulePriority = 200
      description  = "Expire untagged images after ${var.untagged_expiry_days} days"
      selection = {
        tagStatus   = "untagged"
        countType   = "sinceImagePushed"
        countUnit   = "days"
        countNumber = var.untagged_expiry_days
      }
      action = { type = "expire" }
    },
  ]

  lifecycle_policy = jsonencode({ rules = concat(local.protect_rules, local.dev_rules) })
}

resource "aws_ecr_repository" "this" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy     = local.lifecycle_policy

  lifecycle {
    precondition {
      condition     = var.staging_tag_prefix != var.build_tag_prefix
      error_message = "staging_tag_prefix and build_tag_prefix must differ: the staging rule expires only what the build rule does not select first."
    }
  }
}
