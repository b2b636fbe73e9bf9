"""image.lock without a daemon: what the resolvers' output gives (and refuses), what the loader
reads and refuses (file, line, key path), the content hashes a lock changes, the Dockerfile and
build context a locked image renders, refresh.yaml raising a pin, and ``lock --check``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from imagefactory.errors import SpecError, UserError
from imagefactory.freshness.lock import (
    APT_MARK,
    PIP_MARK,
    check_locks,
    parse_resolution,
    write_locks,
)
from imagefactory.project.hashing import content_inputs
from imagefactory.project.plan import make_plan
from imagefactory.project.state import State
from imagefactory.render.catalog import Pins, render_images
from imagefactory.render.dockerfile import PIP_LOCK_FILE, render_dockerfile
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.lock import LOCK_FILE, ImageLock, PipPin, lock_text
from imagefactory.spec.refresh import REFRESH_FILE

from .conftest import copy_example_catalog
from .helpers import run
from .test_plan import recorded

RUNTIME = "images/runtime/llm"
HASH = "sha256:" + "a" * 64
APT = """\
NOTE: This is only a simulation!
Inst libgomp1 (12.2.0-14 Debian:12.12/stable [amd64])
Inst libc6 [2.36-9+deb12u9] (2.36-9+deb12u10 Debian:12.12/stable, Debian-Security:12/stable-security [amd64])
Inst python3 (3.11.2-1+b1 Debian:12.12/stable [amd64])
Inst tzdata (2025b-0+deb12u1 Debian:12.12/stable [all])
Conf libgomp1 (12.2.0-14 Debian:12.12/stable [amd64])
"""  # fmt: skip


@pytest.fixture
def catalog_dir(catalog_dir: Path) -> Path:
    """The example catalog without its committed locks."""
    for lock in catalog_dir.glob(f"images/**/{LOCK_FILE}"):
        lock.unlink()
    return catalog_dir


def test_the_example_catalog_is_locked(tmp_path: Path) -> None:
    catalog = load_catalog(copy_example_catalog(tmp_path))
    assert set(catalog.locks) == {"runtime/llm:cpu", "runtime/llm:cuda", "app/rag-api", "tools/ci"}
    assert check_locks(catalog, list(catalog.images.values())) == []
    assert {"python3", "python3.11", "libgomp1"} <= set(catalog.locks["runtime/llm:cpu"].apt)
    assert {"fastapi", "starlette", "pydantic"} <= set(catalog.locks["app/rag-api"].pip)


def report(*items: dict[str, object]) -> str:
    return json.dumps({"version": "1", "install": list(items)})


def wheel(name: str, version: str, archive: dict[str, object]) -> dict[str, object]:
    return {
        "metadata": {"name": name, "version": version},
        "download_info": {"url": f"https://files.example/{name}.whl", "archive_info": archive},
    }


def output(apt: str = APT, pip: str = "") -> str:
    return f"amd64\n{APT_MARK}\n{apt}{PIP_MARK}\n{pip}"


def test_the_resolvers_output_gives_the_closure_and_the_hashes() -> None:
    pip = report(
        wheel("NumPy", "2.2.6", {"hashes": {"sha256": "a" * 64}}),
        wheel("Huggingface_Hub", "0.33.0", {"hash": "sha256=" + "b" * 64}),  # pip < 23
    )
    lock = parse_resolution("runtime/llm:cpu", output(pip=pip))
    assert lock == ImageLock(
        arch="amd64",
        apt={  # an upgrade of the parent's libc6 is the layer's too; Conf lines are not
            "libgomp1": "12.2.0-14",
            "libc6": "2.36-9+deb12u10",
            "python3": "3.11.2-1+b1",
            "tzdata": "2025b-0+deb12u1",
        },
        pip={
            "numpy": PipPin(version="2.2.6", hash=HASH),
            "huggingface-hub": PipPin(version="0.33.0", hash="sha256:" + "b" * 64),
        },
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (output(apt="Inst curl;id (1.0 Debian [amd64])\n"), "a Debian package name"),
        (output(apt="Inst curl (1.0$(id) Debian [amd64])\n"), "a Debian version"),
        (output(pip=report(wheel("numpy", "2.2.6 --index-url=x", {"hashes": {"sha256": "a" * 64}}))),
         "a canonical Python version"),
        (output(pip=report(wheel("numpy", "2.2.6", {"hashes": {"sha256": "A" * 64}}))),
         "a SHA-256 digest"),
        (output(pip=report(wheel("numpy", "2.2.6", {"hashes": {"md5": "a" * 32}}))),
         "not from an archive with a SHA-256"),
        (output(pip=report({"metadata": {"name": "app", "version": "1.0"},
                            "download_info": {"url": "file:///src", "dir_info": {}}})),
         "not from an archive with a SHA-256"),
        (output(pip="pip: error\n"), "not JSON"),
        ("bash: apt-get: command not found\n", "not what they write"),
    ],
)  # fmt: skip
def test_what_a_parent_answers_is_read_by_the_locks_grammar(text: str, says: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_resolution("runtime/llm:cpu", text)
    assert says in caught.value.message + (caught.value.hint or "")


LOCK = ImageLock(
    arch="amd64",
    apt={"libgomp1": "12.2.0-14", "python3": "3.11.2-1+b1", "python3-venv": "3.11.2-1+b1"},
    pip={
        "numpy": PipPin(version="2.2.6", hash=HASH),
        "tokenizers": PipPin(version="0.21.1", hash=HASH),
        "onnxruntime": PipPin(version="1.22.0", hash=HASH),
    },
)


def locked(root: Path, lock: ImageLock = LOCK) -> Catalog:
    catalog = load_catalog(root)
    write_locks(catalog, {"runtime/llm:cpu": lock})
    return load_catalog(root)


def test_a_written_lock_reads_back_and_rewrites_byte_identically(catalog_dir: Path) -> None:
    catalog = locked(catalog_dir)
    assert catalog.locks == {"runtime/llm:cpu": LOCK}
    text = (catalog_dir / RUNTIME / LOCK_FILE).read_text()
    assert text == lock_text({"runtime/llm:cpu": LOCK})
    assert text.startswith("# Written by `imagefactory lock`")
    write_locks(catalog, {"runtime/llm:cuda": LOCK})  # the folder's other variant stays
    assert load_catalog(catalog_dir).locks == {"runtime/llm:cpu": LOCK, "runtime/llm:cuda": LOCK}


@pytest.mark.parametrize(
    ("text", "key", "line", "says"),
    [
        ("locks:\n  runtime/llm:cpx:\n    arch: amd64\n", "locks.runtime/llm:cpx", 2,
         "did you mean 'runtime/llm:cpu'"),
        ("locks:\n  app/rag-api:\n    arch: amd64\n", "locks.app/rag-api", 2,
         "not an image of the image.yaml beside this lock"),
        ("locks:\n  runtime/llm:cpu:\n    arch: amd64\n    apt:\n      curl: 1.0; id\n",
         "locks.runtime/llm:cpu.apt.curl", 5, "a Debian version"),
        ("locks:\n  runtime/llm:cpu:\n    arch: amd64\n    apt:\n      'curl $(id)': '1.0'\n",
         "locks.runtime/llm:cpu.apt", 4, "a Debian package name"),
        ("locks:\n  runtime/llm:cpu:\n    arch: amd 64\n", "locks.runtime/llm:cpu.arch", 3,
         "a Debian architecture"),
        ("locks:\n  runtime/llm:cpu:\n    arch: amd64\n    pip:\n"
         "      numpy: {version: '2.2.6', hash: 'sha256:abc'}\n",
         "locks.runtime/llm:cpu.pip.numpy.hash", 5, "a SHA-256 digest"),
        ("locks:\n  runtime/llm:cpu:\n    arch: amd64\n    pip:\n"
         f"      numpy: {{version: '2.2.6 -i http://evil', hash: '{HASH}'}}\n",
         "locks.runtime/llm:cpu.pip.numpy.version", 5, "a canonical Python version"),
        ("locks:\n  runtime/llm:cpu:\n    arch: amd64\n    pip:\n"
         f"      '--index-url=http://evil': {{version: '1.0', hash: '{HASH}'}}\n",
         "locks.runtime/llm:cpu.pip", 5, "a normalised Python distribution name"),
        ("locks:\n  runtime/llm:cpu:\n    arch: amd64\n    pip:\n"
         f"      Tokenizers: {{version: '1.0', hash: '{HASH}'}}\n",
         "locks.runtime/llm:cpu.pip", 5, "a normalised Python distribution name"),
        ("locks:\n  runtime/llm:cpu:\n    arch: amd64\n    run: id\n",
         "locks.runtime/llm:cpu.run", 4, ""),
        ("locks: [1, 2\n", "", None, "YAML"),
    ],
)  # fmt: skip
def test_a_hostile_lock_is_refused_with_line_and_key_path(
    catalog_dir: Path, text: str, key: str, line: int | None, says: str
) -> None:
    (catalog_dir / RUNTIME / LOCK_FILE).write_text(text)
    with pytest.raises(SpecError) as caught:
        load_catalog(catalog_dir)
    [issue] = caught.value.issues
    assert issue.file == catalog_dir / RUNTIME / LOCK_FILE
    assert issue.key_path.startswith(key)
    assert line is None or issue.line == line
    assert says in issue.message + (issue.hint or "")


def test_a_lock_rebuilds_exactly_its_image_and_descendants(catalog_dir: Path) -> None:
    before = {e.ref: e for e in make_plan(load_catalog(catalog_dir), State())}
    state = recorded(before)
    after = {e.ref: e.reasons for e in make_plan(locked(catalog_dir), state)}
    assert after == {
        "base/debian12": (),
        "runtime/llm:cpu": ("lock changed",),
        "runtime/llm:cuda": (),
        "tools/ci": (),
        "app/rag-api": ("parent changed",),
        "app/rag-api-distroless": ("parent changed",),
    }
    other = LOCK.model_copy(update={"apt": {**LOCK.apt, "libgomp1": "12.2.0-14+deb12u1"}})
    changed = content_inputs(locked(catalog_dir, other))["runtime/llm:cpu"]
    assert changed.lock != content_inputs(locked(catalog_dir))["runtime/llm:cpu"].lock
    (catalog_dir / RUNTIME / LOCK_FILE).unlink()  # no lock: the hashes of a catalog without any
    assert all(not e.reasons for e in make_plan(load_catalog(catalog_dir), state))


def dockerfile(catalog: Catalog, ref: str) -> str:
    inputs = content_inputs(catalog)
    pins = Pins(catalog.project, inputs, {})
    image = catalog.images[ref]
    return render_dockerfile(catalog, image, inputs[ref].content_hash, pins.parent(image))


def test_a_locked_image_installs_exactly_its_lock(catalog_dir: Path, tmp_path: Path) -> None:
    catalog = locked(catalog_dir)
    text = dockerfile(catalog, "runtime/llm:cpu")
    assert "set -- \\\n      libgomp1=12.2.0-14 \\\n      python3=3.11.2-1+b1 \\\n" in text
    assert 'CaInfo=/run/imagefactory/ca.pem "$@"' in text  # the pins, one word each
    assert 'which the mirror no longer has: run" imagefactory lock runtime/llm:cpu' in text
    assert "--require-hashes --no-deps -r /run/imagefactory/requirements.lock" in text
    assert (
        "--mount=type=bind,source=requirements.lock,target=/run/imagefactory/requirements.lock"
        in text
    )
    assert "onnxruntime==1.22.0" not in text  # the requirements come from the lock's file
    assert "python3 python3-venv libgomp1" not in dockerfile(catalog, "runtime/llm:cuda")
    out = tmp_path / "out"
    [rendered] = render_images(
        catalog,
        [catalog.images["runtime/llm:cpu"]],
        Pins(catalog.project, content_inputs(catalog), {}),
        out,
    )
    assert (rendered.folder / PIP_LOCK_FILE).read_text() == (
        f"numpy==2.2.6 --hash={HASH}\nonnxruntime==1.22.0 --hash={HASH}\n"
        f"tokenizers==0.21.1 --hash={HASH}\n"
    )


def test_a_lock_value_reaches_the_dockerfile_as_one_shell_word(catalog_dir: Path) -> None:
    catalog = locked(catalog_dir)  # the loader refuses these; the renderer escapes them anyway
    hostile = ImageLock.model_construct(
        arch="amd64; touch /pwned", apt={"python3": "1.0$(touch /pwned)"}, pip={}
    )
    text = dockerfile(
        dataclasses.replace(catalog, locks={"runtime/llm:cpu": hostile}), "runtime/llm:cpu"
    )
    assert "      'python3=1.0$(touch /pwned)' \\\n" in text
    assert "locked='amd64; touch /pwned' &&" in text


def test_refresh_raises_a_locked_pin_never_lowers_it(catalog_dir: Path) -> None:
    locked(catalog_dir)
    (catalog_dir / REFRESH_FILE).write_text(
        "refreshed:\n  base/debian12:\n    libgomp1: 12.2.0-14+deb12u1\n"
        "  runtime/llm:cpu:\n    python3: 3.11.2-1\n"  # older than the lock's: the lock's stays
    )
    text = dockerfile(load_catalog(catalog_dir), "runtime/llm:cpu")
    assert "\n      libgomp1=12.2.0-14+deb12u1 \\\n      python3=3.11.2-1+b1 \\\n" in text


def test_check_finds_missing_stale_and_extra_locks(catalog_dir: Path) -> None:
    catalog = load_catalog(catalog_dir)
    assert {s.image for s in check_locks(catalog, list(catalog.images.values()))} == {
        "runtime/llm:cpu",
        "runtime/llm:cuda",
        "app/rag-api",
        "tools/ci",
    }
    catalog = locked(catalog_dir)
    assert check_locks(catalog, [catalog.images["runtime/llm:cpu"]]) == []
    stale = LOCK.model_copy(
        update={
            "apt": {"python3": "3.11.2-1+b1"},
            "pip": {**LOCK.pip, "numpy": PipPin(version="2.2.5", hash=HASH)},
        }
    )
    catalog = locked(catalog_dir, stale)
    [found] = check_locks(catalog, [catalog.images["runtime/llm:cpu"]])
    assert found.problems == (
        "package python3-venv is not locked",
        "package libgomp1 is not locked",
        "pip numpy is locked at 2.2.5, image.yaml asks for numpy==2.2.6",
    )
    write_locks(catalog, {"runtime/llm:cuda": LOCK})
    catalog = load_catalog(catalog_dir)
    [found] = check_locks(catalog, [catalog.images["runtime/llm:cuda"]])
    assert found.problems == (
        "pip requirement onnxruntime-gpu is not locked",
        "pip requirement nvidia-cuda-runtime-cu12 is not locked",
        "pip requirement nvidia-cublas-cu12 is not locked",
        "pip requirement nvidia-cudnn-cu12 is not locked",
    )
    write_locks(catalog, {"base/debian12": ImageLock(arch="amd64")})
    catalog = load_catalog(catalog_dir)
    [found] = check_locks(catalog, [catalog.images["base/debian12"]])
    assert found.problems == ("locked, but installs no packages: remove its entry from image.lock",)


def test_cli_lock_check_needs_no_engine_and_fails_on_a_stale_lock(tmp_path: Path) -> None:
    root = copy_example_catalog(tmp_path)
    passed = run(root, "lock", "--all", "--check")
    assert passed.exit_code == 0, passed.output
    assert "locks cover what 6 images install" in passed.stdout
    (root / RUNTIME / LOCK_FILE).unlink()
    failed = run(root, "lock", "runtime/llm", "--check", "--json")
    assert failed.exit_code == 1
    assert json.loads(failed.stdout) == {
        "ok": False,
        "stale": [
            {"image": ref, "problems": ["no lock: run 'imagefactory lock'"]}
            for ref in ("runtime/llm:cpu", "runtime/llm:cuda")
        ],
    }
    assert run(root, "lock").exit_code == 2  # name images, or --all
