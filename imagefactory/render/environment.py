"""The one Jinja environment every renderer uses: strict, deterministic, with a few filters.

Templates are looked up first in imagefactory's standard templates (``templates/``), then in the
project root, so an image folder's ``Dockerfile.j2`` can ``{% extends "dockerfile/Dockerfile.j2" %}``
and override blocks of the standard template without replacing the whole file.
"""

from __future__ import annotations

import functools
import json
import shlex
from pathlib import Path

import jinja2

from imagefactory.errors import UserError
from imagefactory.project.paths import templates_dir


@functools.lru_cache(maxsize=8)
def environment(project_root: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([templates_dir(), project_root]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # we render Dockerfiles, HCL and YAML, never HTML
    )
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False)
    env.filters["dq"] = lambda value: json.dumps(str(value), ensure_ascii=False)
    env.filters["sh"] = lambda value: shlex.quote(str(value))
    return env


def render_template(project_root: Path, name: str, context: dict[str, object]) -> str:
    try:
        template = environment(project_root).get_template(name)
        return template.render(context)
    except jinja2.TemplateNotFound as exc:
        raise UserError(
            f"template '{exc.name}' not found",
            hint=f"templates are looked up in {templates_dir()} and {project_root}",
        ) from exc
    except jinja2.TemplateSyntaxError as exc:
        raise UserError(
            f"{exc.filename or exc.name}:{exc.lineno}: template syntax error: {exc.message}"
        ) from exc
    except jinja2.UndefinedError as exc:
        raise UserError(
            f"template '{name}' uses an undefined value: {exc.message}",
            hint="an override template may only use the values the standard one uses",
        ) from exc
