"""What an environment's retention lets ``gc`` delete (and the ECR lifecycle policy expire)."""

from __future__ import annotations

from imagefactory.spec.models import (
    FIRST_ENVIRONMENT_RETENTION,
    Environment,
    ProjectSpec,
    Retention,
)


def retention_of(project: ProjectSpec, env: Environment) -> Retention | None:
    """What ``env`` may delete: its ``retention:``, else the first environment's default
    (FIRST_ENVIRONMENT_RETENTION); None where nothing may be deleted (a later environment
    without one, or ``delete: false``)."""
    first = bool(project.environments) and project.environments[0].name == env.name
    retention = env.retention or (FIRST_ENVIRONMENT_RETENTION if first else None)
    return retention if retention is not None and retention.delete else None
