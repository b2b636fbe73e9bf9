# The prod registries: one ECR repository per catalog image (see ../../modules/ecr-repository).

module "repository" {
  source   = "../../modules/ecr-repository"
  for_each = var.repositories

  name                 = each.key
  build_images_to_keep = var.build_images_to_keep
  staging_expiry_days  = var.staging_expiry_days
  untagged_expiry_days = var.untagged_expiry_days

  tags = {
    "imagefactory.image" = each.value.image
  }
}

output "repositories" {
  description = "Repository URL per repository name."
  value       = { for name, repository in module.repository : name => repository.repository_url }
}
