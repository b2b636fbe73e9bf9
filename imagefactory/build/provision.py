"""Provision an image with its Ansible playbooks: run them against a build container, commit.

For an image whose spec lists ``playbooks`` (paths relative to the project root):

1. :func:`check_playbooks` reads each playbook and checks that it exists, parses, and that every
   role it names exists (``<playbook folder>/roles/`` or ``<project>/ansible/roles/``) — before
   any container starts;
2. :func:`provision` starts a build container from the base image (as root, with a keep-alive
   entrypoint), applies every playbook with ``ansible-runner`` over the Docker connection plugin
   (``community.docker.docker``), then applies them again: the second run must report
   ``changed=0`` (the idempotence check Molecule does);
3. the container is committed as one layer with the image's metadata restored
   (:func:`imagefactory.render.packer.config_changes`: ENV, USER, WORKDIR, ENTRYPOINT, CMD,
   LABEL), and removed.

External programs run through :func:`imagefactory.tools.run` only.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from imagefactory import tools
from imagefactory.errors import ToolError, UserError
from imagefactory.render.dockerfile import ParentPin
from imagefactory.render.packer import config_changes
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.issues import near_miss

PROJECT_ROLES = Path("ansible") / "roles"
TASK_KEYS = ("tasks", "pre_tasks", "post_tasks", "handlers", "block", "rescue", "always")
INCLUDE_ROLE = {
    "include_role",
    "import_role",
    "ansible.builtin.include_role",
    "ansible.builtin.import_role",
}
PLAYBOOK_TIMEOUT = 1800.0


@dataclass(frozen=True)
class PlaybookRun:
    """One ``ansible-playbook`` run's recap for the build container."""

    playbook: str
    ok: int
    changed: int
    failed: int
    unreachable: int
    changed_tasks: tuple[str, ...] = ()


def role_paths(catalog: Catalog, playbook: Path) -> list[Path]:
    """Where roles are looked up: next to the playbook, then the project's ``ansible/roles``."""
    return list(dict.fromkeys([playbook.parent / "roles", catalog.root / PROJECT_ROLES]))


def playbook_roles(path: Path) -> list[str]:
    """Every role a playbook names: ``roles:`` of each play and include/import_role tasks."""
    try:
        plays = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"playbook {path} cannot be read: {exc}") from exc
    if not isinstance(plays, list):
        raise UserError(f"playbook {path} is not a list of plays")
    roles: list[str] = []
    for play in plays:
        if not isinstance(play, dict):
            continue
        for role in play.get("roles") or []:
            name = role.get("role") or role.get("name") if isinstance(role, dict) else role
            if isinstance(name, str):
                roles.append(name)
        roles += _task_roles(play)
    return list(dict.fromkeys(roles))


def _task_roles(node: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for key in TASK_KEYS:
        for task in node.get(key) or []:
            if not isinstance(task, dict):
                continue
            for module in INCLUDE_ROLE & task.keys():
                args = task[module]
                name = args.get("name") if isinstance(args, dict) else args
                if isinstance(name, str):
                    found.append(name)
            found += _task_roles(task)
    return found


def check_playbooks(catalog: Catalog, image: CatalogImage) -> list[Path]:
    """The image's playbooks as absolute paths; UserError naming every missing file or role."""
    problems: list[str] = []
    paths: list[Path] = []
    for entry in image.spec.playbooks:
        path = catalog.root / entry
        if not path.is_file():
            problems.append(f"playbook '{entry}' does not exist in the project")
            continue
        paths.append(path)
        search = role_paths(catalog, path)
        known = sorted({p.name for folder in search if folder.is_dir() for p in folder.iterdir()})
        for role in playbook_roles(path):
            if "{{" in role or any((folder / role / "tasks").is_dir() for folder in search):
                continue
            guess = near_miss(role, known)
            problems.append(
                f"{entry}: role '{role}' does not exist"
                + (f" (did you mean '{guess}'?)" if guess else "")
            )
    if problems:
        raise UserError(
            f"{image.ref}: " + "; ".join(problems),
            hint="roles are looked up in the playbook's roles/ folder and in ansible/roles/",
        )
    return paths


def ansible_runner() -> str:
    """``ansible-runner`` of this Python environment, else the one on PATH."""
    local = Path(sys.executable).parent / "ansible-runner"
    return str(local) if local.exists() else "ansible-runner"


def _tool_path() -> str:
    """PATH for Ansible: this environment's tools, then the Docker CLI imagefactory uses (the
    connection plugin runs ``docker`` from PATH; /usr/local/bin may hold another CLI)."""
    docker_dir = str(Path(tools.docker_cli()).parent) if os.sep in tools.docker_cli() else ""
    parts = [str(Path(sys.executable).parent), docker_dir, os.environ.get("PATH", "")]
    return os.pathsep.join(p for p in parts if p)


def run_playbook(
    catalog: Catalog,
    playbook: Path,
    container: str,
    *,
    extra_vars: dict[str, Any] | None = None,
    timeout: float = PLAYBOOK_TIMEOUT,
    on_line: Callable[[str], None] | None = None,
) -> PlaybookRun:
    """Apply ``playbook`` to the running ``container`` with ansible-runner; its recap."""
    private = Path(tempfile.mkdtemp(prefix="imagefactory-ansible-"))
    try:
        (private / "inventory").mkdir()
        (private / "inventory" / "hosts.json").write_text(
            json.dumps(
                {
                    "all": {
                        "hosts": {
                            container: {
                                "ansible_connection": "community.docker.docker",
                                "ansible_user": "root",
                                "ansible_python_interpreter": "/usr/bin/python3",
                            }
                        }
                    }
                }
            ),
            encoding="utf-8",
        )
        (private / "env").mkdir()
        env_vars = {
            "ANSIBLE_ROLES_PATH": os.pathsep.join(str(p) for p in role_paths(catalog, playbook)),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_GALAXY_SERVER_LIST": "",
            "PATH": _tool_path(),
        }
        (private / "env" / "envvars").write_text(json.dumps(env_vars), encoding="utf-8")
        if extra_vars:
            (private / "env" / "extravars").write_text(json.dumps(extra_vars), encoding="utf-8")
        ident = "run"
        result = tools.run(
            [ansible_runner(), "run", private, "--playbook", playbook, "--ident", ident],
            env={"PATH": env_vars["PATH"]},
            timeout=timeout,
            check=False,
            on_line=on_line,
        )
        recap = _recap(private / "artifacts" / ident, container, playbook.name)
        if result.returncode != 0 or recap.failed or recap.unreachable:
            raise ToolError(
                result.argv,
                result.returncode,
                "\n".join(result.output.splitlines()[-tools.TAIL_LINES :]),
                hint=f"playbook {playbook.name} failed on the build container",
            )
        return recap
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _recap(artifacts: Path, host: str, name: str) -> PlaybookRun:
    events = []
    for path in sorted((artifacts / "job_events").glob("*.json")):
        try:
            events.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    stats: dict[str, Any] = next(
        (e.get("event_data", {}) for e in events if e.get("event") == "playbook_on_stats"), {}
    )
    changed_tasks = tuple(
        str(e.get("event_data", {}).get("task", "?"))
        for e in events
        if e.get("event") == "runner_on_ok"
        and e.get("event_data", {}).get("res", {}).get("changed")
    )

    def count(key: str) -> int:
        value = stats.get(key) or {}
        return int(value.get(host, 0)) if isinstance(value, dict) else 0

    return PlaybookRun(
        name,
        count("ok"),
        count("changed"),
        count("failures"),
        count("dark"),
        changed_tasks,
    )


def provision(
    catalog: Catalog,
    image: CatalogImage,
    base: str,
    tag: str,
    content_hash: str,
    parent: ParentPin | None,
    *,
    check_idempotence: bool = True,
    extra_vars: dict[str, Any] | None = None,
    timeout: float = PLAYBOOK_TIMEOUT,
    on_line: Callable[[str], None] | None = None,
) -> list[PlaybookRun]:
    """Apply the image's playbooks to a container of ``base`` and commit it as ``tag``.

    Returns the recaps of the second (idempotence) run, or of the first when it is skipped.
    """
    playbooks = check_playbooks(catalog, image)
    docker = tools.docker_cli()
    container = f"imagefactory-provision-{uuid.uuid4().hex[:12]}"
    tools.run(
        [
            *(docker, "run", "--detach", "--name", container, "--user", "0:0"),
            *("--network", "host", "--entrypoint", "sleep", base, "infinity"),
        ],
        timeout=120,
        hint=f"the base image {base} must exist locally and have 'sleep'",
    )
    try:
        runs = [
            run_playbook(
                catalog, p, container, extra_vars=extra_vars, timeout=timeout, on_line=on_line
            )
            for p in playbooks
        ]
        if check_idempotence:
            runs = [
                run_playbook(
                    catalog, p, container, extra_vars=extra_vars, timeout=timeout, on_line=on_line
                )
                for p in playbooks
            ]
            changed = [r for r in runs if r.changed]
            if changed:
                raise UserError(
                    f"{image.ref}: playbooks are not idempotent: the second run changed "
                    + "; ".join(
                        f"{r.playbook}: {r.changed} ({', '.join(r.changed_tasks)})" for r in changed
                    ),
                    hint="make those tasks report changed only when they change something",
                )
        # docker commit cannot clear ENTRYPOINT/CMD (an empty --change is ignored), so the
        # image config is set by a metadata-only build on top of the committed layer.
        scratch = f"imagefactory-provision:{container.rsplit('-', 1)[-1]}"
        tools.run([docker, "commit", container, scratch], timeout=300)
        try:
            dockerfile = "\n".join(
                [f"FROM {scratch}", *config_changes(catalog, image, content_hash, parent), ""]
            )
            tools.run(
                [docker, "build", "--quiet", "--tag", tag, "-"],
                stdin=dockerfile.encode(),
                env={"DOCKER_BUILDKIT": "1"},
                timeout=300,
            )
        finally:
            tools.run([docker, "rmi", scratch], timeout=60, check=False)
        return runs
    finally:
        tools.run([docker, "rm", "--force", container], timeout=60, check=False)
