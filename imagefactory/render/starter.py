"""``imagefactory init``: a new catalog repository from a starter that ships in the package.

A starter is a stack of folders under ``templates/starters/`` (``llm`` is ``minimal`` plus a
runtime and an app). Their files are copied byte for byte; the one value that comes from the
user, the project name, replaces the placeholder :data:`PLACEHOLDER` only after it has passed
the project-name grammar. The pipeline is not a file of the starter: it is generated from the
new catalog by the same code as ``imagefactory ci generate``, so it is never stale. Nothing is
written when any file the starter would write is there already.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from imagefactory.atomic import inside, write_atomically
from imagefactory.errors import UserError
from imagefactory.project.paths import templates_dir
from imagefactory.render.outputs import RenderRequest, render_outputs
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.models import IDENTIFIER_PATTERN

#: Each starter and its folders under templates/starters/, copied in this order.
STARTERS: dict[str, tuple[str, ...]] = {"minimal": ("minimal",), "llm": ("minimal", "llm")}
#: Where the generated pipeline goes, relative to the new catalog's root.
PIPELINE = Path(".gitlab-ci.yml")
#: Stands for the project name in a starter's files.
PLACEHOLDER = b"@PROJECT@"
#: A file name starting so in a starter starts with a dot in the catalog (package data globs
#: leave dotfiles out).
DOT = "dot-"
_NAME_MAX = 64  # spec.models.Identifier's max_length


@dataclass(frozen=True)
class Starter:
    root: Path
    template: str
    project: str
    written: tuple[str, ...]  # paths relative to root, in the order written
    jobs: tuple[str, ...]  # the generated pipeline's jobs


def starter_files(template: str) -> dict[str, bytes]:
    """The files of ``template`` by their path in the new catalog (placeholders still in)."""
    if template not in STARTERS:
        raise UserError(
            f"no starter template '{template}'", hint=f"choose one of: {', '.join(STARTERS)}"
        )
    files: dict[str, bytes] = {}
    for layer in STARTERS[template]:
        folder = templates_dir() / "starters" / layer
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                parts = path.relative_to(folder).parts
                name = parts[-1]
                shown = "." + name[len(DOT) :] if name.startswith(DOT) else name
                files["/".join((*parts[:-1], shown))] = path.read_bytes()
    return files


def project_name(name: str) -> str:
    """``name`` when it is a project name (``imagefactory.yaml``'s ``project``)."""
    if len(name) > _NAME_MAX or not re.fullmatch(IDENTIFIER_PATTERN, name):
        raise UserError(
            f"{name!r} is not a project name: expected lowercase letters and digits, "
            f"separated by single '.', '_' or '-', at most {_NAME_MAX} characters",
            hint="pass --name NAME (the folder's name is the default)",
        )
    return name


def write_starter(root: Path, template: str, name: str | None = None) -> Starter:
    """Write the starter ``template`` into ``root`` (made when missing) and its pipeline, for
    the project ``name`` (default: the folder's name); refuses before writing anything when a
    target exists."""
    root = root.resolve()  # "..", "." and links: the folder they lead to names the project
    project = project_name(root.name if name is None else name)
    files = starter_files(template)
    taken = [t for t in [*files, PIPELINE.as_posix()] if _taken(root, t)]
    if taken:
        raise UserError(
            f"{root} already holds {', '.join(taken)}: init writes nothing over an existing file",
            hint="init into a new or empty folder, or move those files away first",
        )
    for relative, data in files.items():
        text = data.replace(PLACEHOLDER, project.encode("ascii"))
        write_atomically(inside(root, relative), text, mode=0o644, root=root)
    report = render_outputs(load_catalog(root), RenderRequest("pipeline", out=PIPELINE))
    return Starter(root, template, project, (*files, PIPELINE.as_posix()), report.jobs)


def _taken(root: Path, relative: str) -> bool:
    """Whether writing ``relative`` below ``root`` would replace or go through something: the
    file exists, or a link or a file stands where it or a folder on its way goes."""
    *folders, name = Path(relative).parts
    path = root
    for part in folders:
        path = path / part
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            return True
    return (path / name).exists() or (path / name).is_symlink()
