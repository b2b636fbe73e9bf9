"""Generate a synthetic imagefactory catalog: N image files in a DAG of a given depth.

Level 1 holds bootstrapped roots (``bootstrap:``, no public base image), each further level
builds on an image of the level above. Every ``image.yaml`` is small but shaped like the
example catalog's: packages, pip pins, env, labels, users, ports, healthchecks, tests; every
fifth level-2 image has a ``cpu``/``cuda`` variant axis (its children name one variant), and the
leaf images copy a small source folder (so the plan hashes real files).

Deterministic: the same arguments give the same bytes. Usable on its own::

    .venv/bin/python bench/synthetic_catalog.py /tmp/catalog --images 500 --depth 4
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PACKAGES = [
    "ca-certificates", "tzdata", "curl", "git", "jq", "less", "libgomp1", "libssl3",
    "locales", "openssl", "procps", "python3", "python3-venv", "unzip", "xz-utils", "zstd",
]  # fmt: skip
PIP = [
    "numpy==2.2.6", "tokenizers==0.21.1", "fastapi==0.115.12", "uvicorn==0.34.3",
    "pydantic==2.11.5", "httpx==0.28.1", "orjson==3.10.18", "structlog==25.4.0",
    "sqlalchemy==2.0.41", "redis==6.2.0", "boto3==1.38.30", "pyarrow==20.0.0",
]  # fmt: skip
KINDS = {1: "base", 2: "runtime", 3: "platform", 4: "app"}
APP_MAIN = '''"""Service {name}: answers /healthz."""

import json
import os

CONFIG = json.load(open(os.path.join(os.path.dirname(__file__), "config.json")))


def healthz() -> dict[str, str]:
    return {{"status": "ok", "service": CONFIG["service"]}}
'''


@dataclass
class Node:
    level: int
    index: int
    name: str
    parent: Node | None = None
    variants: list[str] = field(default_factory=list)

    @property
    def refs(self) -> list[str]:
        """What a child may write in ``from``: the name, or one ref per variant."""
        return [f"{self.name}:{v}" for v in self.variants] if self.variants else [self.name]


def level_sizes(images: int, depth: int) -> list[int]:
    """How many image files each level holds: a few roots, then growing levels (sum = images)."""
    if depth < 1 or images < depth:
        raise ValueError("need depth >= 1 and at least one image per level")
    weights = [2**level for level in range(depth)]
    roots = max(1, min(images // 50, 16))
    rest = images - roots
    sizes = [roots] + [max(1, rest * w // sum(weights[1:])) for w in weights[1:]]
    sizes[-1] += images - sum(sizes)
    return sizes


def project_file(namespace: str) -> dict[str, Any]:
    registry = {
        "url": "127.0.0.1:5000",
        "username_env": "IMAGEFACTORY_REGISTRY_USER",
        "password_env": "IMAGEFACTORY_REGISTRY_PASSWORD",
        "tls_verify": False,
    }
    build: dict[str, Any] = {
        "mirrors": {
            "debian": "http://deb.debian.org/debian",
            "debian_security": "http://deb.debian.org/debian-security",
        },
        "source_date_epoch": 1700000000,
    }
    if CA_BUNDLE.is_file():
        build["ca_bundle"] = str(CA_BUNDLE)
    return {
        "project": "synthetic",
        "catalog": "images",
        "state": ".imagefactory/state.json",
        "registries": {
            env: {**registry, "namespace": f"{namespace}/{env}"}
            for env in ("dev", "preprod", "prod")
        },
        "environments": [
            {"name": "dev", "registries": ["dev"]},
            {"name": "preprod", "registries": ["preprod"]},
            {"name": "prod", "registries": ["prod"], "approval": True},
        ],
        "build": build,
        "defaults": {
            "labels": {
                "org.opencontainers.image.vendor": "Example Bank - Data & AI Lab",
                "org.opencontainers.image.licenses": "Apache-2.0",
            },
            "env": {"TZ": "UTC", "LANG": "C.UTF-8"},
            "targets": ["docker"],
        },
    }


def image_document(node: Node, rng: random.Random) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": node.name,
        "version": f"{1 + node.index % 3}.{node.index % 7}.{node.index % 5}",
        "description": f"Synthetic {KINDS.get(node.level, 'layer')} image {node.index}.",
    }
    if node.parent is None:
        doc["bootstrap"] = {
            "suite": "bookworm",
            "variant": "minbase",
            "packages": ["ca-certificates", "tzdata"],
        }
        doc["create_users"] = [
            {"name": "app", "uid": 10001, "gid": 10001, "home": "/home/app"},
        ]
        doc["workdir"] = "/home/app"
    else:
        doc["from"] = rng.choice(node.parent.refs)
    doc["packages"] = sorted(rng.sample(PACKAGES, rng.randint(1, 4)))
    if node.level >= 2:
        doc["pip"] = sorted(rng.sample(PIP, rng.randint(1, 3)))
    doc["env"] = {
        f"{KINDS.get(node.level, 'layer').upper()}_ID": str(node.index),
        "PYTHONUNBUFFERED": "1",
    }
    doc["labels"] = {
        "com.example-bank.image.tier": KINDS.get(node.level, "layer"),
        "com.example-bank.owner": f"team-{node.index % 12:02d}",
    }
    doc["user"] = "app"
    if node.variants:
        doc["variants"] = {
            "accelerator": {
                "cpu": {"pip": ["onnxruntime==1.22.0"]},
                "cuda": {
                    "pip": ["onnxruntime-gpu==1.22.0"],
                    "env": {"NVIDIA_VISIBLE_DEVICES": "all"},
                },
            }
        }
    if node.level == 4 or (node.level > 1 and node.index % 4 == 0):
        port = 8000 + node.index % 1000
        doc["files"] = [{"src": "app", "dest": f"/opt/{node.name.replace('/', '-')}"}]
        doc["ports"] = [port]
        doc["entrypoint"] = ["python", "-m", "main"]
        doc["healthcheck"] = {
            "cmd": [
                "python",
                "-c",
                f"import urllib.request as u; u.urlopen('http://127.0.0.1:{port}/')",
            ],
            "interval": "15s",
        }
    doc["tests"] = {
        "packages": {"installed": doc["packages"][:2]},
        "metadata": {"user": "10001:10001"},
        "commands": [{"name": "shell works", "run": ["sh", "-c", "true"]}],
        "non_root": True,
    }
    return doc


def generate(out: Path, images: int = 500, depth: int = 4, namespace: str = "synthetic") -> int:
    """Write the catalog under ``out``; returns the number of image files written."""
    rng = random.Random(f"{images}/{depth}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "imagefactory.yaml").write_text(
        yaml.safe_dump(project_file(namespace), sort_keys=False), encoding="utf-8"
    )
    levels: list[list[Node]] = []
    for level, size in enumerate(level_sizes(images, depth), start=1):
        kind = KINDS.get(level, f"layer{level}")
        nodes = []
        for index in range(size):
            parent = rng.choice(levels[-1]) if levels else None
            node = Node(level, index, f"{kind}/{kind[:3]}-{index:03d}", parent)
            if level == 2 and index % 5 == 0:
                node.variants = ["cpu", "cuda"]
            nodes.append(node)
        levels.append(nodes)
    for nodes in levels:
        for node in nodes:
            folder = out / "images" / node.name
            folder.mkdir(parents=True, exist_ok=True)
            doc = image_document(node, rng)
            (folder / "image.yaml").write_text(
                f"# Synthetic image {node.name} (level {node.level}).\n"
                + yaml.safe_dump(doc, sort_keys=False),
                encoding="utf-8",
            )
            if "files" in doc:
                app = folder / "app"
                app.mkdir(exist_ok=True)
                (app / "main.py").write_text(APP_MAIN.format(name=node.name), encoding="utf-8")
                (app / "config.json").write_text(
                    json.dumps({"service": node.name, "replicas": 1 + node.index % 3}),
                    encoding="utf-8",
                )
    return sum(len(nodes) for nodes in levels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the catalog into")
    parser.add_argument("--images", type=int, default=500, help="image files (default 500)")
    parser.add_argument("--depth", type=int, default=4, help="levels of the DAG (default 4)")
    args = parser.parse_args()
    written = generate(args.out, args.images, args.depth)
    print(f"{written} image files written under {args.out / 'images'}")


if __name__ == "__main__":
    main()
