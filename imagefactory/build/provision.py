"""Provision an image with its Ansible playbooks: run them against a build container, commit.

For an image whose spec lists ``playbooks`` (paths relative to the project root):

1. :func:`check_playbooks` reads each playbook and checks that it exists, parses, and that every
   role it names exists (``<playbook folder>/roles/`` or ``<project>/ansible/roles/``) — before
   any container starts;
2. :func:`provision` checks that Ansible is installed (ansible-runner, ansible-playbook and the
   community.docker collection come with the ``ansible`` extra), starts a build container from
   the base image (as root, with a keep-alive entrypoint), applies every playbook with
   ``ansible-runner`` over the Docker connection plugin (``community.docker.docker``), then
   applies them again: the second run must report ``changed=0`` (the idempotence check Molecule
   does);
3. the container is committed as one layer with the image's metadata restored
   (:func:`imagefactory.render.packer.config_changes`: ENV, USER, WORKDIR, ENTRYPOINT, CMD,
   LABEL), and removed.

Docker is driven through the engine (:class:`imagefactory.build.docker.Engine`: its CLI and its
DOCKER_CONFIG, for the connection plugin too); ansible-runner runs through
:func:`imagefactory.tools.run`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagefactory import tools
from imagefactory.build.docker import Engine
from imagefactory.errors import ToolError, UserError
from imagefactory.render.dockerfile import ParentPin
from imagefactory.render.packer import config_changes
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.issues import near_miss
from imagefactory.spec.yamldoc import read_yaml

PROJECT_ROLES = Path("ansible") / "roles"
TASK_KEYS = ("tasks", "pre_tasks", "post_tasks", "handlers", "block", "rescue", "always")
INCLUDE_ROLE = {
    "include_role",
    "import_role",
    "ansible.builtin.include_role",
    "ansible.builtin.import_role",
}
PLAYBOOK_TIMEOUT = 1800.0
ANSIBLE_EXTRA = "pip install 'imagefactory[ansible]'"
DOCKER_COLLECTION = Path("ansible_collections") / "community" / "docker"
DEFAULT_COLLECTIONS_PATH = "~/.ansible/collections:/usr/share/ansible/collections"


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
    document = read_yaml(path)  # bounded: size, aliases, plain data only (an Ansible !vault too)
    problem = next((p for p in document.problems if p.fatal), None)
    if problem is not None:
        line = f" (line {problem.line})" if problem.line else ""
        raise UserError(
            f"playbook {path} cannot be read{line}: {problem.message}", hint=problem.hint
        )
    plays = document.data
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


def ansible_programs(*names: str) -> list[str]:
    """Where Ansible's programs ``names`` are (this Python environment first, then PATH); a
    UserError naming the ``ansible`` extra when one of them or the community.docker collection
    (the Docker connection plugin) is not installed."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = {name: shutil.which(name, path=path) for name in names}
    missing = [name for name, where in found.items() if where is None]
    if not any((root / DOCKER_COLLECTION).is_dir() for root in _collection_roots()):
        missing.append("the community.docker collection")
    if missing:
        raise UserError(
            f"provisioning with Ansible playbooks needs {', '.join(missing)}, "
            f"which {'is' if len(missing) == 1 else 'are'} not installed",
            hint=f"install imagefactory's ansible extra: {ANSIBLE_EXTRA}",
        )
    return [where for where in found.values() if where is not None]


def _collection_roots() -> Iterator[Path]:
    """Where Ansible finds collections: this Python's import path, then its collection paths."""
    yield from (Path(entry) for entry in sys.path if entry)
    paths = os.environ.get("ANSIBLE_COLLECTIONS_PATH") or DEFAULT_COLLECTIONS_PATH
    yield from (Path(entry).expanduser() for entry in paths.split(os.pathsep) if entry)


def ansible_runner() -> str:
    """``ansible-runner`` of this Python environment, else the one on PATH (and ansible-playbook
    and the community.docker collection, which it needs)."""
    return ansible_programs("ansible-runner", "ansible-playbook")[0]


def run_playbook(
    catalog: Catalog,
    playbook: Path,
    container: str,
    *,
    engine: Engine | None = None,
    extra_vars: dict[str, Any] | None = None,
    timeout: float = PLAYBOOK_TIMEOUT,
    on_line: Callable[[str], None] | None = None,
) -> PlaybookRun:
    """Apply ``playbook`` to the running ``container`` of ``engine`` (by default the user's own
    Docker login) with ansible-runner; its recap."""
    runner = ansible_runner()
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
        if extra_vars:
            (private / "env" / "extravars").write_text(json.dumps(extra_vars), encoding="utf-8")
        ident = "run"
        with (engine or Engine()).child_env() as docker_env:  # the plugin runs `docker`
            env_vars = {
                "ANSIBLE_ROLES_PATH": os.pathsep.join(
                    str(p) for p in role_paths(catalog, playbook)
                ),
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_RETRY_FILES_ENABLED": "0",
                "ANSIBLE_GALAXY_SERVER_LIST": "",
                "PATH": docker_env["PATH"],
            }
            (private / "env" / "envvars").write_text(json.dumps(env_vars), encoding="utf-8")
            result = tools.run(
                [runner, "run", private, "--playbook", playbook, "--ident", ident],
                env=docker_env,
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
    engine: Engine | None = None,
    check_idempotence: bool = True,
    extra_vars: dict[str, Any] | None = None,
    timeout: float = PLAYBOOK_TIMEOUT,
    on_line: Callable[[str], None] | None = None,
) -> list[PlaybookRun]:
    """Apply the image's playbooks to a container of ``base`` and commit it as ``tag``, all on
    ``engine`` (by default the user's own Docker login).

    Returns the recaps of the second (idempotence) run, or of the first when it is skipped.
    """
    playbooks = check_playbooks(catalog, image)
    ansible_runner()  # without Ansible: the UserError naming the extra, before any container
    engine = engine or Engine()
    container = f"imagefactory-provision-{uuid.uuid4().hex[:12]}"
    engine.start(
        base,
        container,
        hint=f"the base image {base} must exist locally and have 'sleep'",
        user="0:0",
        network="host",
        entrypoint="sleep",
        command=["infinity"],
    )

    def apply_all() -> list[PlaybookRun]:
        return [
            run_playbook(
                catalog,
                p,
                container,
                engine=engine,
                extra_vars=extra_vars,
                timeout=timeout,
                on_line=on_line,
            )
            for p in playbooks
        ]

    try:
        runs = apply_all()
        if check_idempotence:
            runs = apply_all()
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
        engine.commit(container, scratch)
        try:
            engine.build_config(
                tag,
                "\n".join(
                    [f"FROM {scratch}", *config_changes(catalog, image, content_hash, parent), ""]
                ),
            )
        finally:
            engine.remove_image(scratch)
        return runs
    finally:
        engine.remove_container(container)
