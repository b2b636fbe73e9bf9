"""A registry's url and namespace from CI variables (``url_env``, ``namespace_env``).

One ``imagefactory.yaml`` serves a laptop (``url: 127.0.0.1:5000``) and a GitLab job
(``url_env: CI_REGISTRY``): a named variable that is set and not empty replaces the literal.
Only variables whose names cannot be a secret's are accepted (spec/grammar.py), and the value
must fit the literal's own grammar, so no value can add a path, a user or a scheme to the
repository names every later step builds from it. A host from a variable is always reached over
verified TLS: ``tls_verify: false`` is for the literal (a loopback registry), never for a
registry the runner names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from imagefactory.errors import SpecIssue
from imagefactory.spec.grammar import shown
from imagefactory.spec.models import REGISTRY_NAMESPACE, REGISTRY_URL, ProjectSpec, Registry
from imagefactory.spec.yamldoc import YamlDocument

#: (setting, variable setting, grammar, what is expected, a hint)
_FIELDS = (
    ("url", "url_env", REGISTRY_URL, "a registry host: HOST[:PORT]", "e.g. registry.example.com"),
    (
        "namespace",
        "namespace_env",
        REGISTRY_NAMESPACE,
        "a registry namespace: lowercase path segments",
        "e.g. group/project/dev (GitLab allows three levels below the project)",
    ),
)


def registries_from_env(
    project: ProjectSpec, doc: YamlDocument, environ: Mapping[str, str]
) -> tuple[ProjectSpec, list[SpecIssue]]:
    """``project`` with each registry's url and namespace taken from its variables where they
    are set, and an issue for each variable whose value does not fit."""
    issues: list[SpecIssue] = []
    registries: dict[str, Registry] = {}
    for name, registry in project.registries.items():
        update: dict[str, object] = {}
        for field, env_field, pattern, expected, hint in _FIELDS:
            variable = getattr(registry, env_field)
            value = environ.get(variable, "") if variable else ""
            if not value:
                continue
            if re.fullmatch(pattern, value):
                update[field] = value
                if field == "url":
                    update["tls_verify"] = True
                continue
            key = ("registries", name, env_field)
            issues.append(
                SpecIssue(
                    doc.path,
                    ".".join(key),
                    f"${variable} holds {shown(value)}, which is not {expected}",
                    doc.line_of(key),
                    f"{hint}; or unset ${variable} to use registries.{name}.{field}",
                )
            )
        registries[name] = registry.model_copy(update=update) if update else registry
    return project.model_copy(update={"registries": registries}), issues
