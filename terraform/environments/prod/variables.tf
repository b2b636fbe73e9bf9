# project, environment, repositories and retention come from imagefactory.auto.tfvars.json, which
# `imagefactory render terraform` writes from the catalog: do not edit that file by hand.

variable "project" {
  description = "The imagefactory project (imagefactory.yaml: project)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]+(?:[._-][a-z0-9]+)*$", var.project))
    error_message = "project must be lowercase letters and digits joined by . _ or - (as imagefactory.yaml requires)."
  }
}

variable "environment" {
  description = "The environment this configuration manages; the rendered tfvars must be for it."
  type        = string

  validation {
    condition     = var.environment == "prod"
    error_message = "This is the prod configuration: its tfvars must be rendered for environment \"prod\"."
  }
}

variable "repositories" {
  description = <<-EOT
    One ECR repository per catalog image: full repository name => the catalog image it holds,
    and whether its unreleased builds (content-*) expire (a leaf image, with a retention here).
  EOT
  type = map(object({
    image         = string
    expire_builds = bool
  }))

  validation {
    condition     = length(var.repositories) > 0
    error_message = "No repositories: render the tfvars with 'imagefactory render terraform' from a catalog with images."
  }

  validation {
    condition = alltrue([
      for name in keys(var.repositories) :
      length(name) >= 2 && length(name) <= 256 &&
      can(regex("^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$", name))
    ])
    error_message = "Every repository name must be 2-256 characters of lowercase letters and digits joined by . _ - or /, as ECR requires."
  }
}

variable "aws_region" {
  description = "The AWS region of the registry."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(?:-[a-z]+)+-[0-9]+$", var.aws_region))
    error_message = "aws_region must be an AWS region name such as eu-west-1."
  }
}

variable "retention" {
  description = <<-EOT
    What imagefactory gc keeps here (imagefactory.yaml: the environment's retention, else the
    first environment's default); null: nothing is deleted. build_expiry_days is
    max(keep_days, hold_days, 1): the days after their push that unreleased builds of a leaf
    image expire.
  EOT
  type = object({
    keep_versions     = number
    keep_days         = number
    hold_days         = number
    build_expiry_days = number
  })

  # null when the environment deletes nothing (no retention, or delete: false)
  validation {
    condition = var.retention == null ? true : (
      alltrue([for n in values(var.retention) : n >= 0 && floor(n) == n]) &&
      var.retention.keep_versions >= 1 &&
      var.retention.build_expiry_days == max(var.retention.keep_days, var.retention.hold_days, 1)
    )
    error_message = "retention: keep_versions (at least 1), keep_days and hold_days are whole numbers, and build_expiry_days is max(keep_days, hold_days, 1), so that ECR expires no build gc keeps: render it with 'imagefactory render terraform'."
  }
}

variable "staging_expiry_days" {
  description = "Days after which images tagged only staging-<hash>-<nonce> (a build's image no content tag took) expire."
  type        = number
  default     = 1

  validation {
    condition     = var.staging_expiry_days > 0 && floor(var.staging_expiry_days) == var.staging_expiry_days
    error_message = "staging_expiry_days must be a whole number greater than 0."
  }
}

variable "untagged_expiry_days" {
  description = "Days after which untagged images expire."
  type        = number
  default     = 30

  validation {
    condition     = var.untagged_expiry_days > 0 && floor(var.untagged_expiry_days) == var.untagged_expiry_days
    error_message = "untagged_expiry_days must be a whole number greater than 0."
  }
}

variable "kms_key_arn" {
  description = <<-EOT
    ARN of the KMS key that encrypts every repository of this environment; null (the default):
    AES256, keys ECR manages. Set it in a tfvars file of your own (not the rendered one) before
    the first apply: ECR cannot re-encrypt a repository, so a change replaces every repository
    and the images in it.
  EOT
  type        = string
  default     = null
}
