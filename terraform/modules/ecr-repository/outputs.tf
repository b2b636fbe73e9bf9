output "name" {
  description = "The repository name."
  value       = aws_ecr_repository.this.name
}

output "arn" {
  description = "The repository ARN."
  value       = aws_ecr_repository.this.arn
}

output "repository_url" {
  description = "The registry host and repository, as docker and skopeo address it."
  value       = aws_ecr_repository.this.repository_url
}

output "lifecycle_policy" {
  description = "The lifecycle policy JSON applied to the repository."
  value       = aws_ecr_lifecycle_policy.this.policy
}
