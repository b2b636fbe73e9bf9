variable "name" {
  description = "Full ECR repository name: <namespace>/<catalog image name>. Variants share it."
  type        = string

  validation {
    condition = (
      length(var.name) >= 2 && length(var.name) <= 256 &&
      can(regex("^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$", var.name))
    )
    error_message = "The repository name must be 2-256 characters of lowercase letters, digits and . _ - / separators, as ECR requires."
  }
}

variable "promoted_tag_patterns" {
  description = <<-EOT
    Tag wildcard patterns of released images. An image carrying any of them is matched by a
    protecting rule first, so no dev-build rule can ever expire it. The defaults cover
    imagefactory's tags: X.Y.Z and X.Y.Z-<variant> (*.*.*), git-<sha>, latest, latest-<variant>.
  EOT
  type        = list(string)
  default     = ["*.*.*", "git-*", "latest", "latest-*"]

  validation {
    condition     = length(var.promoted_tag_patterns) > 0 && alltrue([for p in var.promoted_tag_patterns : length(p) > 0 && length(regexall("\\*", p)) <= 4])
    error_message = "List at least one tag pattern; each is non-empty with at most 4 '*' wildcards (an ECR limit)."
  }
}

variable "promoted_images_to_keep" {
  description = "The protecting rules' count (released images, and content-* builds where build_expiry_days is null): far above any real number of images, so in practice they are never expired."
  type        = number
  default     = 9999

  validation {
    condition     = var.promoted_images_to_keep >= 1000 && floor(var.promoted_images_to_keep) == var.promoted_images_to_keep
    error_message = "promoted_images_to_keep must be a whole number of at least 1000: it only exists to shield released images."
  }
}

variable "build_tag_prefix" {
  description = "Prefix of the build tags imagefactory pushes for each content hash (naming.CONTENT_TAG_PREFIX)."
  type        = string
  default     = "content-"
}

variable "build_expiry_days" {
  description = <<-EOT
    Days after its push an unreleased build (tagged only content-<hash>) expires: the
    environment's max(keep_days, hold_days). Only for a leaf image's repository (no catalog
    image is built on it) in an environment whose retention deletes. null: builds are kept
    (elsewhere ECR cannot know which build a child or gc still needs; imagefactory gc deletes).
  EOT
  type        = number
  default     = null

  validation {
    condition     = var.build_expiry_days == null ? true : var.build_expiry_days >= 1 && floor(var.build_expiry_days) == var.build_expiry_days
    error_message = "build_expiry_days must be a whole number of at least 1 (or null)."
  }
}

variable "staging_tag_prefix" {
  description = "Prefix of the staging tags a build pushes its image under before it writes the content tag (build/publish.py: STAGING_TAG_PREFIX)."
  type        = string
  default     = "staging-"

  validation {
    condition     = length(var.staging_tag_prefix) > 0
    error_message = "staging_tag_prefix must not be empty."
  }
}

variable "staging_expiry_days" {
  description = "Images tagged only with a staging tag (an unreproducible rebuild, an interrupted build) expire this many days after their push."
  type        = number
  default     = 1

  validation {
    condition     = var.staging_expiry_days > 0 && floor(var.staging_expiry_days) == var.staging_expiry_days
    error_message = "staging_expiry_days must be a whole number greater than 0."
  }
}

variable "untagged_expiry_days" {
  description = "Untagged images (replaced build layers, dangling manifests) expire this many days after their push."
  type        = number
  default     = 7

  validation {
    condition     = var.untagged_expiry_days > 0 && floor(var.untagged_expiry_days) == var.untagged_expiry_days
    error_message = "untagged_expiry_days must be a whole number greater than 0."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the repository's images; null: AES256 (keys ECR manages). Set before the first apply: a change replaces the repository."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null ? true : can(regex("^arn:aws(?:-[a-z]+)*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>): ECR reports the key by its ARN, so an alias or a bare key id would plan a replacement on every run."
  }
}

variable "force_delete" {
  description = "Let terraform destroy delete the repository even when it holds images."
  type        = bool
  default     = false
}

variable "tags" {
  description = "AWS tags for the repository."
  type        = map(string)
  default     = {}
}
