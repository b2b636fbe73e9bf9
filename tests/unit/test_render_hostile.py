"""Hostile catalog values at the renderer: no template calls Python, no value adds a Dockerfile
instruction or a shell command, and ENV/LABEL values read back exactly as written.

The spec models are built with ``model_copy(update=...)``, past the loader's grammar, so these
tests hold for a value the grammar would miss. The rendered Dockerfile is read back the way
BuildKit reads it (``frontend/dockerfile/parser``: one instruction per line, ``\\`` continuations,
comment lines dropped; ``shell/lex.go``: the escapes inside double quotes).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagefactory.errors import UserError
from imagefactory.project.hashing import content_inputs
from imagefactory.render.catalog import Pins
from imagefactory.render.dockerfile import file_entries, render_dockerfile
from imagefactory.render.environment import environment
from imagefactory.render.packer import config_changes, packer_context
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.models import BuildSecret, FileCopy, UserAccount

REF = "app/rag-api"
HASH = "sha256:" + "0" * 64
DIGESTS = {"base/debian12": "sha256:" + "b" * 64, "runtime/llm:cpu": "sha256:" + "c" * 64}
PAYLOADS = [
    "x\nRUN --mount=type=secret,id=tok cat /run/secrets/tok > /leaked.txt",
    "x; touch /pwned",
    "x $(touch /pwned)",
    "x `touch /pwned`",
    "x' && touch /pwned && '",
    'x" && touch /pwned && "',
    "price $5 and ${HOME} \\$X \\",
]


# --- reading a Dockerfile back


def instructions(text: str) -> list[str]:
    """The logical instructions of ``text``, continuations joined as BuildKit joins them."""
    result: list[str] = []
    pending: str | None = None
    for line in text.split("\n"):  # not splitlines(): BuildKit ends a line at \n only
        if re.match(r"\s*#", line) or (pending is None and not line.strip()):
            continue
        body = re.sub(r"\\[ \t]*$", "", line)
        pending = body.lstrip() if pending is None else pending + body
        if body == line:
            result.append(pending)
            pending = None
    assert pending is None, "the Dockerfile ends inside a continuation"
    return result


def kinds(text: str) -> list[str]:
    return [i.split(None, 1)[0] for i in instructions(text)]


def unquote(word: str) -> str:
    """A double-quoted ENV/LABEL value as BuildKit's lexer reads it; refuses an unescaped $."""
    assert word.startswith('"') and word.endswith('"'), word
    body = word[1:-1]
    assert not re.search(r'(?<!\\)(?:\\\\)*[$"]', body), f"unescaped $ or quote in {word}"
    return re.sub(r'\\([\\"$])', r"\1", body)


def key_values(instruction: str) -> dict[str, str]:
    """``ENV``/``LABEL`` ``key="value" ...`` → {key: value as the engine sets it}."""
    pairs = re.findall(r'(\S+?)=("(?:[^"\\]|\\.)*")', instruction.split(None, 1)[1])
    rest = re.sub(r'(\S+?)=("(?:[^"\\]|\\.)*")', "", instruction.split(None, 1)[1])
    assert not rest.strip(), f"unparsed words: {rest!r}"
    return {key: unquote(value) for key, value in pairs}


def shell_words(command: str) -> list[str]:
    """The words and operators (``&&``, ``;``, ``(``...) of a shell command, quotes removed."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def run_words(text: str) -> list[list[str]]:
    """The shell words of every RUN line."""

    return [shell_words(i.removeprefix("RUN ")) for i in instructions(text) if i.startswith("RUN ")]


def copy_args(instruction: str) -> list[str]:
    """COPY's sources and destination as BuildKit expands them (no variable set)."""
    rest = re.sub(r"^COPY( --\S+)*\s+", "", instruction)
    if rest.startswith("["):
        return [re.sub(r"""\\([\\"'$])""", r"\1", a) for a in json.loads(rest)]
    assert not re.search(r"""[\\"'$]""", rest), rest  # the plain form: tokens only
    return rest.split(" ")


# --- a catalog whose app/rag-api spec is changed past the loader


@pytest.fixture
def catalog(pinned_catalog_dir: Path) -> Catalog:
    return load_catalog(pinned_catalog_dir)


def with_spec(catalog: Catalog, *, ref: str = REF, **update: Any) -> Catalog:
    image = catalog.images[ref]
    changed = dataclasses.replace(image, spec=image.spec.model_copy(update=update))
    return dataclasses.replace(catalog, images={**catalog.images, ref: changed})


def render(catalog: Catalog, ref: str = REF) -> str:
    pins = Pins(catalog.project, content_inputs(catalog), DIGESTS)
    return render_dockerfile(catalog, catalog.images[ref], HASH, pins.parent(catalog.images[ref]))


def render_or_refuse(catalog: Catalog, ref: str = REF) -> str | None:
    """The Dockerfile, or None when the renderer refuses the value (a UserError, no traceback)."""
    try:
        return render(catalog, ref)
    except UserError as exc:
        assert "cannot be written" in exc.message
        return None


def account(**fields: Any) -> UserAccount:
    return UserAccount(name="svc", uid=20001).model_copy(update=fields)


def shell_fields(value: str) -> dict[str, dict[str, Any]]:
    """Each RUN-line field of the issue, set to ``value`` (on images where it is rendered)."""
    copy = FileCopy(src="app/rag_api", dest="/opt/rag-api/rag_api", mode="0644")
    return {
        "packages": {"packages": ["curl", value]},
        "venv": {"venv": value},
        "create_users[].name": {"create_users": [account(name=value)]},
        "create_users[].home": {"create_users": [account(home=value)]},
        "create_users[].shell": {"create_users": [account(shell=value)]},
        "files[].dest (a folder, with mode)": {"files": [copy.model_copy(update={"dest": value})]},
    }


# --- sandbox


@pytest.mark.parametrize(
    "payload",
    [
        "{{ cycler.__init__.__globals__.os.popen('touch PWNED').read() }}",
        "{{ joiner.__init__.__globals__.os.popen('touch PWNED').read() }}",
        "{{ namespace.__init__.__globals__ }}{{ lipsum() }}{{ range(3) }}{{ dict(a=1) }}",
        "{{ self.__init__.__globals__['__builtins__']['open']('PWNED', 'w') }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ '{0.__class__.__init__.__globals__}'.format(ref) }}",
        "{{ packages.append('evil') }}",
        "{{ ref | attr('__class__') }}",
    ],
)
def test_an_override_cannot_reach_python(
    pinned_catalog_dir: Path, payload: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(pinned_catalog_dir)
    override = pinned_catalog_dir / "images/app/rag-api/Dockerfile.j2"
    override.write_text(
        '{% extends "dockerfile/Dockerfile.j2" %}\n{% block extra %}\n'
        + payload
        + "\n{% endblock %}\n"
    )
    with pytest.raises(UserError) as raised:
        render(load_catalog(pinned_catalog_dir))
    assert not (pinned_catalog_dir / "PWNED").exists()
    assert "Dockerfile.j2" in raised.value.message and raised.value.hint


def test_a_refused_attribute_names_the_override_line(pinned_catalog_dir: Path) -> None:
    override = pinned_catalog_dir / "images/app/rag-api/Dockerfile.j2"
    override.write_text(
        '{% extends "dockerfile/Dockerfile.j2" %}\n{% block extra %}\n\n'
        "{{ ref.__class__.__mro__ }}\n{% endblock %}\n"
    )
    with pytest.raises(UserError, match=r"Dockerfile\.j2:4: refused by the template sandbox"):
        render(load_catalog(pinned_catalog_dir))


def test_an_override_linked_out_of_the_project_is_refused(
    pinned_catalog_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.txt"
    outside.write_text("FROM scratch\n# a host file: {{ ref }}\n")
    (pinned_catalog_dir / "images/app/rag-api/Dockerfile.j2").symlink_to(outside)
    with pytest.raises(UserError, match="outside"):
        render(load_catalog(pinned_catalog_dir))


# --- injection, field by field


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("field", list(shell_fields("")))
def test_a_run_line_value_stays_one_shell_word(catalog: Catalog, field: str, payload: str) -> None:
    benign = render(with_spec(catalog, **shell_fields("/opt/benign")[field]))
    text = render_or_refuse(with_spec(catalog, **shell_fields(payload)[field]))
    if text is None:
        assert "\n" in payload
        return
    assert kinds(text) == kinds(benign)
    hostile_words, benign_words = run_words(text), run_words(benign)
    assert [len(w) for w in hostile_words] == [len(w) for w in benign_words]
    assert payload in [word for words in hostile_words for word in words]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_file_name_or_dest_stays_one_copy_argument(catalog: Catalog, payload: str) -> None:
    name = payload.replace("/", "_")  # a file name under files[].src
    copy = FileCopy(src="rag_api", dest="/opt/x").model_copy(update={"src": f"dir/{name}"})
    benign = render(with_spec(catalog, files=[copy.model_copy(update={"src": "dir/a"})]))
    for files in ([copy], [copy.model_copy(update={"src": "dir/a", "dest": payload})]):
        text = render(with_spec(catalog, files=files))
        assert kinds(text) == kinds(benign)
        [line] = [i for i in instructions(text) if i.startswith("COPY ")]
        assert copy_args(line) == [f"files/0/{PurePosixPath(files[0].src).name}", files[0].dest]


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("field", ["env", "labels"])
def test_env_and_label_values_read_back_exactly(catalog: Catalog, field: str, payload: str) -> None:
    update: dict[str, Any] = {field: {"HOSTILE": payload}}
    text = render_or_refuse(with_spec(catalog, **update))
    if text is None:
        assert "\n" in payload
        return
    assert kinds(text) == kinds(render(catalog))
    [line] = [i for i in instructions(text) if i.startswith("ENV " if field == "env" else "LABEL ")]
    assert key_values(line)["HOSTILE"] == payload


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("field", ["env", "labels", "build_args"])
def test_a_hostile_key_is_refused(catalog: Catalog, field: str, payload: str) -> None:
    with pytest.raises(UserError, match="cannot be written"):
        update: dict[str, Any] = {field: {payload: "v"}}
        render(with_spec(catalog, **update))


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("field", ["workdir", "user"])
def test_workdir_and_user_stay_one_argument(catalog: Catalog, field: str, payload: str) -> None:
    text = render_or_refuse(with_spec(catalog, **{field: payload}))
    if text is None:
        assert "\n" in payload
        return
    assert kinds(text) == kinds(render(catalog))
    keyword = "WORKDIR " if field == "workdir" else "USER "
    assert unquote(
        [i for i in instructions(text) if i.startswith(keyword)][-1][len(keyword) :]
    ) == (payload)


@pytest.mark.parametrize("field", ["id", "as_env"])
def test_a_hostile_secret_id_or_variable_is_refused(catalog: Catalog, field: str) -> None:
    secret = BuildSecret(id="tok", env="TOK", as_env="TOKEN")
    hostile = secret.model_copy(update={field: "tok,target=/etc\nRUN cat /run/secrets/tok"})
    with pytest.raises(UserError, match="cannot be written"):
        render(with_spec(catalog, ref="runtime/llm:cpu", secrets=[hostile]), "runtime/llm:cpu")
    spaced = secret.model_copy(update={field: "tok $(touch /pwned)"})
    with pytest.raises(UserError, match="cannot be written"):
        render(with_spec(catalog, ref="runtime/llm:cpu", secrets=[spaced]), "runtime/llm:cpu")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_packer_shell_step_value_stays_one_shell_word(
    catalog: Catalog, payload: str, tmp_path: Path
) -> None:
    ref = "runtime/llm:cpu"
    changed = with_spec(catalog, ref=ref, packages=[payload], create_users=[account(shell=payload)])
    changed = dataclasses.replace(changed, locks={})  # image.yaml's packages, not the lock's pins
    try:
        pins = Pins(changed.project, content_inputs(changed), DIGESTS)
        steps = packer_context(changed, changed.images[ref], pins, tmp_path)["steps"]
    except UserError as exc:
        assert "\n" in payload and "cannot be written" in exc.message
        return
    commands = [
        json.loads(c.replace("$${", "${").replace("%%{", "%{"))  # an HCL string literal
        for step in steps
        if step["kind"] == "shell"
        for c in step["inline"]
    ]
    users, install = commands[0], next(c for c in commands if "apt-get install" in c)
    assert shell_words(users).count(payload) == 1 and shell_words(install)[-1] == payload
    assert shell_words(users).count("&&") == 1


@pytest.mark.parametrize("name", ["X;touch /pwned;Y", "/tmp/x", "A B"])
def test_a_packer_build_arg_name_is_a_shell_variable_name(
    catalog: Catalog, name: str, tmp_path: Path
) -> None:
    changed = with_spec(catalog, ref="runtime/llm:cpu", build_args={name: "v"})
    pins = Pins(changed.project, content_inputs(changed), DIGESTS)
    with pytest.raises(UserError, match="shell variable name"):
        packer_context(changed, changed.images["runtime/llm:cpu"], pins, tmp_path)


def test_packer_config_changes_escape_like_the_dockerfile(catalog: Catalog) -> None:
    changed = with_spec(catalog, env={"PRICE": "price $5 and ${HOME}"}, workdir="/w/$HOME")
    changes = config_changes(changed, changed.images[REF], HASH, None)
    assert 'ENV PRICE="price \\$5 and \\${HOME}"' in changes
    assert 'WORKDIR "/w/\\$HOME"' in changes


# --- property: the instruction list is what the spec implies

# Line breaks are refused (test_a_run_line_value_stays_one_shell_word...); everything else must
# render, as written.
METACHARACTERS = [*"\t ;&|$(){}`'\"\\#=*?<>!~%,:-[]/", "${HOME}", "$(id)", "\\ ", "a", "Z", "é"]
hostile_text = st.lists(st.sampled_from(METACHARACTERS), min_size=1, max_size=12).map("".join)


def expected_kinds(catalog: Catalog, ref: str) -> list[str]:
    """The instruction list the Dockerfile of ``ref`` (built on a parent) must have."""
    spec = catalog.images[ref].spec
    runs = len(spec.create_users) + bool(spec.packages) + bool(spec.pip)
    copies = [
        k
        for f in file_entries(catalog.images[ref])
        for k in (["COPY", "RUN"] if f.mode and f.is_dir else ["COPY"])
    ]
    return [
        "FROM",
        *["ARG"] * len(spec.build_args),
        "USER",
        "SHELL",
        *["RUN"] * runs,
        *copies,
        *(["ENV"] if spec.env else []),
        *(["WORKDIR"] if spec.workdir else []),
        *["EXPOSE"] * len(spec.ports),
        *(["HEALTHCHECK"] if spec.healthcheck else []),
        *(["ENTRYPOINT"] if spec.entrypoint is not None else []),
        *(["CMD"] if spec.cmd is not None else []),
        "LABEL",
        "USER",
    ]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    package=hostile_text,
    venv=hostile_text,
    workdir=hostile_text,
    user=hostile_text,
    dest=hostile_text,
    name=hostile_text,
    home=hostile_text,
    shell=hostile_text,
    env_value=hostile_text,
    label_value=hostile_text,
)
def test_any_metacharacters_give_exactly_the_spec_instructions(
    catalog: Catalog,
    package: str,
    venv: str,
    workdir: str,
    user: str,
    dest: str,
    name: str,
    home: str,
    shell: str,
    env_value: str,
    label_value: str,
) -> None:
    copy = FileCopy(src="app/rag_api", dest="/opt/x", mode="0644").model_copy(update={"dest": dest})
    changed = with_spec(
        catalog,
        packages=[package],
        venv=venv,
        workdir=workdir,
        user=user,
        files=[copy],
        create_users=[account(name=name, home=home, shell=shell)],
        env={"HOSTILE": env_value},
        labels={"org.example.hostile": label_value},
    )
    text = render(changed)
    assert kinds(text) == expected_kinds(changed, REF)
    words = [w for ws in run_words(text) for w in ws]
    for value in (package, venv, name, home, shell, dest):
        assert value in words
    [env_line] = [i for i in instructions(text) if i.startswith("ENV ")]
    assert key_values(env_line)["HOSTILE"] == env_value
    [label_line] = [i for i in instructions(text) if i.startswith("LABEL ")]
    assert key_values(label_line)["org.example.hostile"] == label_value


def test_a_line_break_in_a_commented_path_stays_in_the_comment(catalog: Catalog) -> None:
    def moved(folder: str) -> Catalog:
        image = dataclasses.replace(catalog.images[REF], file=catalog.root / folder / "image.yaml")
        return dataclasses.replace(catalog, images={**catalog.images, REF: image})

    text = render(moved("images/x\nRUN touch /pwned"))
    assert kinds(text) == kinds(render(moved("images/x")))
    assert "# Rendered by imagefactory from images/x\\nRUN touch /pwned/image.yaml;" in text


@settings(max_examples=300, deadline=None)
@given(value=st.text())
def test_a_yaml_string_reads_back_as_written(value: str) -> None:
    dq = environment(Path("/nonexistent")).filters["dq"]
    assert yaml.safe_load(f"key: {dq(value)}\n") == {"key": value}
