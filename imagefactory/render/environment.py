"""The one Jinja environment every renderer uses: sandboxed, strict, deterministic, with the
escaping filters of each output context.

Templates are looked up first in imagefactory's standard templates (``templates/``), then in the
project root, so an image folder's ``Dockerfile.j2`` can ``{% extends "dockerfile/Dockerfile.j2" %}``
and override blocks of the standard template without replacing the whole file. An override is
catalog input, so untrusted: every template renders in Jinja's immutable sandbox with only the
filters and globals below, and a template that reaches for anything else is a ``UserError``.

Every value reaches a template through one of the filters, each escaping for one context:

* ``sh``: a POSIX shell word (RUN lines, Packer shell steps); :func:`shell_name` checks the
  variable names a shell line assigns. ``dockerfile.py`` builds its RUN fragments (mounts,
  exports) with the same functions.
* ``dockerfile_value``: an ENV, ARG or LABEL value, double-quoted for BuildKit's word lexer
  (``frontend/dockerfile/shell/lex.go``): ``\\``, ``"`` and ``$`` are escaped, so ``$VAR`` and
  ``${VAR}`` stay as written.
* ``dockerfile_word``: a WORKDIR or USER argument: as it is when it holds no special character,
  else quoted like a value.
* ``dockerfile_token``: what BuildKit splits at whitespace or never unquotes (FROM, EXPOSE, flag
  values, ENV/ARG/LABEL keys): only plain characters, anything else is refused.
* ``dockerfile_args``: COPY arguments: plain tokens, else the JSON form, whose strings BuildKit
  still expands (so ``\\``, quotes and ``$`` are escaped inside them).
* ``json``: a JSON value (the exec form of CMD, ENTRYPOINT, HEALTHCHECK, which BuildKit does not
  expand; YAML flow values).
* ``dq``: a YAML double-quoted scalar (a JSON string, YAML's line breaks and non-printables
  escaped).
* ``comment``: text after a ``#``: line breaks and control characters are written as escapes.
* in an HTML template (``*.html.j2``: the report) autoescaping writes every value as text;
  ``megabytes`` shows a byte count.

A Dockerfile instruction is one line (a line break ends it, whatever the quoting), so a value with
a line break is refused everywhere but in the JSON forms, which write it as ``\\n``.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

import jinja2
import jinja2.exceptions
import jinja2.sandbox

from imagefactory.errors import UserError
from imagefactory.project.paths import templates_dir

# No quote, escape, "$", "=", "," or whitespace: BuildKit reads these back as written.
_TOKEN = re.compile(r"[A-Za-z0-9_./:@+-]+")
_LINE_BREAK = re.compile(r"[\n\r\x00]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029\ud800-\udfff]")
# What a YAML double-quoted scalar does not keep as written: C1 controls and DEL (not printable),
# U+0085/U+2028/U+2029 (line breaks, folded to a space), BOM, non-characters, lone surrogates.
_YAML_UNSAFE = re.compile(r"[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")
_BUILTIN_FILTERS = ("join", "indent")  # the Jinja filters the standard templates use
_BUILTIN_TESTS = ("none", "defined")


def _text(value: object) -> str:
    text = str(value)
    if re.search(r"[\ud800-\udfff]", text):
        raise UserError(
            f"{text!r} cannot be written into a UTF-8 file: it holds a lone surrogate",
            hint="write the character itself, not half of a \\uD8xx\\uDCxx pair",
        )
    return text


def _one_line(value: object, context: str) -> str:
    text = _text(value)
    if _LINE_BREAK.search(text):
        raise UserError(
            f"{text!r} cannot be written as {context}: it holds a line break or NUL",
            hint="a Dockerfile instruction is one line; write the value on one line",
        )
    return text


def shell_word(value: object) -> str:
    """``value`` as one POSIX shell word, on one line."""
    return shlex.quote(_one_line(value, "a shell word"))


def shell_name(value: object) -> str:
    """A shell variable name (``export NAME=``, ``NAME=value command``): never quoted, so checked."""
    text = str(value)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        raise UserError(
            f"{text!r} cannot be written as a shell variable name",
            hint="a variable name is letters, digits and _, not starting with a digit",
        )
    return text


def dockerfile_value(value: object) -> str:
    """An ENV/ARG/LABEL value that BuildKit reads back exactly (no variable is expanded)."""
    text = _one_line(value, "a Dockerfile value")
    return '"' + re.sub(r'([\\"$])', r"\\\1", text) + '"'


def dockerfile_token(value: object) -> str:
    """A FROM/EXPOSE argument, a flag value or a key: plain characters only."""
    text = str(value)
    if not _TOKEN.fullmatch(text):
        raise UserError(
            f"{text!r} cannot be written into a Dockerfile here: only letters, digits and . _ / : @ + -",
            hint="Dockerfile keys, flag values, FROM and EXPOSE arguments cannot be quoted",
        )
    return text


def dockerfile_word(value: object) -> str:
    """A WORKDIR/USER argument: plain when it can be, else quoted like a value."""
    text = str(value)
    return text if _TOKEN.fullmatch(text) else dockerfile_value(text)


def dockerfile_args(values: Iterable[object]) -> str:
    """COPY/ADD sources and destination: plain tokens, else the (variable-escaped) JSON form."""
    texts = [_text(v) for v in values]
    if all(_TOKEN.fullmatch(t) for t in texts):
        return " ".join(texts)
    return json.dumps([re.sub(r"""([\\"'$])""", r"\\\1", t) for t in texts])


def yaml_string(value: object) -> str:
    """A YAML double-quoted scalar that reads back as ``value``: JSON, with the characters YAML
    would fold or refuse written as ``\\u`` escapes."""
    text = json.dumps(str(value), ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def comment(value: object) -> str:
    """Text for a comment line: line breaks and control characters as JSON escapes."""
    return _CONTROL.sub(lambda m: json.dumps(m.group())[1:-1], str(value))


def megabytes(value: object) -> str:
    """A byte count as ``docker image ls`` counts megabytes (10^6 bytes)."""
    if not isinstance(value, int):
        raise UserError(f"{value!r} is not a byte count")
    return f"{value / 1e6:.1f} MB"


class _ConfinedLoader(jinja2.FileSystemLoader):
    """A file-system loader that does not follow a symlink out of its search path."""

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        resolved = Path(filename).resolve()
        if not any(resolved.is_relative_to(Path(p).resolve()) for p in self.searchpath):
            raise UserError(
                f"template '{template}' is a link to {resolved}, outside {', '.join(self.searchpath)}",
                hint="a template override must be a file inside the project",
            )
        return source, filename, uptodate


def _html(name: str | None) -> bool:
    """Whether template ``name`` writes HTML (``*.html.j2``): then every value is escaped."""
    return name is not None and name.endswith(".html.j2")


@functools.lru_cache(maxsize=8)
def environment(project_root: Path) -> jinja2.Environment:
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        loader=_ConfinedLoader([templates_dir(), project_root]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=_html,  # Dockerfiles, HCL and YAML as written; the report's HTML escaped
    )
    env.globals.clear()  # range, dict, cycler, joiner, namespace, lipsum: none is needed
    env.filters = {name: env.filters[name] for name in _BUILTIN_FILTERS}
    env.tests = {name: env.tests[name] for name in _BUILTIN_TESTS}
    env.filters.update(
        json=lambda value: json.dumps(value, ensure_ascii=False),
        dq=yaml_string,
        sh=shell_word,
        dockerfile_value=dockerfile_value,
        dockerfile_word=dockerfile_word,
        dockerfile_token=dockerfile_token,
        dockerfile_args=dockerfile_args,
        comment=comment,
        megabytes=megabytes,
    )
    return env


def _template_line(exc: BaseException) -> str:
    """``file:line`` of the innermost template frame of ``exc``'s traceback, if any."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""


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
            f"{exc.filename or exc.name}:{exc.lineno}: template syntax error: {exc.message}",
            hint="filters a template may use: "
            + ", ".join(sorted(environment(project_root).filters)),
        ) from exc
    except jinja2.exceptions.SecurityError as exc:
        raise UserError(
            f"{_template_line(exc) or name}: refused by the template sandbox: {exc}",
            hint="a template may use the values and filters of the standard one, no Python",
        ) from exc
    except jinja2.UndefinedError as exc:
        raise UserError(
            f"{_template_line(exc) or name}: template '{name}' uses an undefined value: "
            f"{exc.message}",
            hint="an override template may only use the values the standard one uses",
        ) from exc
    except UserError as exc:
        where = _template_line(exc)
        if not where:
            raise
        raise UserError(f"{where}: {exc.message}", hint=exc.hint) from exc
