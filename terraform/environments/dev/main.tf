# The dev registries: one ECR repository per catalog image (see ../../modules/ecr-repository).

module "repository" {
  source   = "../../modules/ecr-repository"
  for_each = var.repositories

  name                 = each.key
  staging_expiry_days  = var.staging_expiry_days
  untagged_expiry_days = var.untagged_expiry_days
  kms_key_arn          = var.kms_key_arn
  # null (builds kept) but for a leaf image where the environment's retention deletes
  build_expiry_days = each.value.expire_builds ? var.retention.build_expiry_days : null

  tags = {
    "imagefactory.image" = each.value.image
  }
}

output "retention" {
  description = "What imagefactory gc keeps in this environment (null: nothing is deleted); the lifecycle policies expire a subset of what it deletes."
  value       = var.retention
}

output "repositories" {
  description = "Repository URL per repository name."
  value       = { for name, repository in module.repository : name => repository.repository_url }
}
