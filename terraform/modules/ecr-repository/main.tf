# One ECR repository for one catalog image (its variants share it and differ by tag).
#
# Lifecycle policy. ECR evaluates rules by priority, and an image that matches the tag
# selection of a rule can never be expired by a rule of lower priority. So the first rules
# select released images (every tag pattern in var.promoted_tag_patterns: one rule each,
# because a rule with several patterns only selects images carrying all of them) with a
# count no catalog reaches; then unreleased builds tagged content-<hash> are either expired
# some days after their push (var.build_expiry_days) or kept with that same count; then images
# tagged only staging-<hash>-<nonce> expire some days after their push; last, untagged images
# expire after some days. An image that was built (content-<hash>) and then pushed or
# promoted (X.Y.Z, git-<sha>) carries both kinds of tag: the protecting rule wins.
#
# ECR and `imagefactory gc`. gc deletes by the environment's retention (imagefactory.yaml:
# keep_versions, keep_days, hold_days). It keeps a digest that an alias of any environment
# names, that a GitOps overlay pins, that is among the keep_versions highest of its MAJOR.MINOR
# line, younger than keep_days, a parent of a kept digest (in any repository), the catalog's
# current build, or yanked/revoked less than hold_days ago. ECR sees no pins, no other
# repository and no yank or revocation record, so this policy expires only a subset of what
# gc deletes, where the tags alone tell:
#   - released images (any version, alias or git tag) are never expired here: gc decides;
#   - an unreleased build (content-*) expires var.build_expiry_days after its push, which the
#     render sets to max(keep_days, hold_days): past keep_days gc deletes it too, and a revoked
#     build is held that long. But ECR cannot tell which build of an image a child was built
#     on, so only a leaf image's repository (no catalog image is built on it), in an
#     environment whose retention deletes, expires builds (the render's expire_builds); a parent
#     image's repository, and every repository of an environment without retention, keeps
#     them with the protecting count and leaves them to gc. Not visible to ECR either: a
#     leaf's current build left unreleased and unchanged longer than that, and a build revoked
#     late (gc holds it hold_days from the revocation, ECR counts from the push);
#   - images tagged only staging-* and untagged images expire as before: no tag makes them a
#     release or a build.
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

  # Exactly one content-* rule: the builds expire (var.build_expiry_days) or are kept (null).
  build_rules = concat(
    [
      for days in(var.build_expiry_days == null ? [] : [var.build_expiry_days]) : {
        rulePriority = 100
        description  = "Expire dev builds (${var.build_tag_prefix}*) ${days} days after their push"
        selection = {
          tagStatus     = "tagged"
          tagPrefixList = [var.build_tag_prefix]
          countType     = "sinceImagePushed"
          countUnit     = "days"
          countNumber   = days
        }
        action = { type = "expire" }
      }
    ],
    [
      for count in(var.build_expiry_days == null ? [var.promoted_images_to_keep] : []) : {
        rulePriority = 100
        description  = "Keep dev builds (${var.build_tag_prefix}*): imagefactory gc decides"
        selection = {
          tagStatus     = "tagged"
          tagPrefixList = [var.build_tag_prefix]
          countType     = "imageCountMoreThan"
          countNumber   = count
        }
        action = { type = "expire" }
      }
    ],
  )

  dev_rules = [
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

  lifecycle_policy = jsonencode({ rules = concat(local.protect_rules, local.build_rules, local.dev_rules) })
}

# Tag mutability. A release moves tags: push and promote point X.Y, X and latest (and their
# -<variant> forms) at the new image. An IMMUTABLE repository refuses to re-point any existing
# tag (ImageTagAlreadyExistsException), so every release after the first would fail. ECR can
# exempt tags from immutability (IMMUTABLE_WITH_EXCLUSION and image_tag_mutability_exclusion_filter),
# but the AWS provider has that only from 6.8.0, and these configurations pin 5.x. So the
# repository is MUTABLE, and imagefactory keeps its own tags immutable: before it writes, a push
# or promotion refuses to move an X.Y.Z or git-<sha> tag that names another digest
# (release/tags.py: plan_changes; only --force on a push gets past it, and the audit log marks
# that), and a build writes content-<hash> only where the tag is free, then reads it back
# (build/publish.py). A release's image that loses its aliases keeps its X.Y.Z and git- tags,
# so the lifecycle policy's protecting rules still select it first.
#
# Encryption. AES256 (ECR's own keys) unless var.kms_key_arn names a KMS key. ECR cannot change
# the encryption of an existing repository: setting, changing or removing the key replaces the
# repository, and with it every image in it (terraform plan says "forces replacement").
resource "aws_ecr_repository" "this" {
  name                 = var.name
  image_tag_mutability = "MUTABLE"
  force_delete         = var.force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = var.kms_key_arn == null ? "AES256" : "KMS"
    kms_key         = var.kms_key_arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy     = local.lifecycle_policy

  lifecycle {
    # ECR deletes a repository's lifecycle policy with the repository: when the repository is
    # replaced (a new name or encryption), the policy must be put again, or the new repository
    # has none until the next apply.
    replace_triggered_by = [aws_ecr_repository.this]

    precondition {
      condition     = var.staging_tag_prefix != var.build_tag_prefix
      error_message = "staging_tag_prefix and build_tag_prefix must differ: the staging rule expires only what the build rule does not select first."
    }
  }
}
