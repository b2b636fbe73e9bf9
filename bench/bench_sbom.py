"""Benchmark: the SBOM of a built image against ``docker image save`` of it alone.

What the build adds per image (imagefactory.build.image_sbom + imagefactory.sbom): ``docker
image save`` of the local image into a private folder, each layer copied out of the archive and
read (whiteouts applied), the packages found, the CycloneDX document written (its strict
validation runs in the tests, not in a build). The plain side is the ``docker image save`` the
SBOM starts with, so the ratio is the cost of reading the layers and writing the SBOM on top of
the save a build cannot avoid. Both sides run interleaved (the order alternates), ``--repeat``
times each, on the same local image; the median is reported with min and max.

The image defaults to app/rag-api of the checkout's state (the example catalog's top image, as
``imagefactory build app/rag-api`` left it in the local engine); ``--image`` names another
local image. Needs a Docker engine; no registry. Run from the repository root::

    .venv/bin/python bench/bench_sbom.py [--repeat 5] [--image REF] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from stats import summary  # bench/stats.py: the script's folder is on sys.path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from imagefactory.build.docker import Engine  # noqa: E402
from imagefactory.build.image_sbom import saved_root  # noqa: E402
from imagefactory.sbom.document import ImageIdentity, sbom_json  # noqa: E402

DEFAULT_REF = "app/rag-api"


def default_image() -> tuple[str, str]:
    """(repository@digest, digest) of app/rag-api in the checkout's state."""
    state = json.loads((REPO / ".imagefactory" / "state.json").read_text())
    record = state["images"][DEFAULT_REF]
    return f"{record['repository']}@{record['digest']}", record["digest"]


def save_only(engine: Engine, reference: str, work: Path) -> float:
    with tempfile.TemporaryDirectory(dir=work) as folder:
        started = time.perf_counter()
        engine.save(reference, Path(folder) / "image.tar")
        return time.perf_counter() - started


def sbom(engine: Engine, reference: str, digest: str, work: Path) -> tuple[float, int]:
    started = time.perf_counter()
    root = saved_root(engine, reference, work)
    text = sbom_json(
        root,
        ImageIdentity(reference.partition("@")[0], "bench", digest),
        timestamp=datetime.datetime.now(datetime.UTC),
    )
    return time.perf_counter() - started, len(json.loads(text).get("components") or [])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--image", help="a local image (default: app/rag-api of the state)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.image:
        reference = args.image
        digest = "sha256:" + "0" * 64  # only the SBOM's name for it
    else:
        reference, digest = default_image()
    engine = Engine()
    engine.check()
    size = engine.image(reference).size_bytes
    saves: list[float] = []
    sboms: list[float] = []
    components = 0
    with tempfile.TemporaryDirectory(prefix="bench-sbom-") as folder:
        work = Path(folder)
        save_only(engine, reference, work)  # warm: the first save reads the layers from disk
        for index in range(args.repeat):
            if index % 2 == 0:
                saves.append(save_only(engine, reference, work))
                seconds, components = sbom(engine, reference, digest, work)
                sboms.append(seconds)
            else:
                seconds, components = sbom(engine, reference, digest, work)
                sboms.append(seconds)
                saves.append(save_only(engine, reference, work))
    results = {
        "image": reference,
        "size_bytes": size,
        "components": components,
        "repeat": args.repeat,
        "docker_image_save_s": summary(saves),
        "sbom_s": summary(sboms),
        "ratio": statistics.median(sboms) / statistics.median(saves),
    }
    print(f"image {reference} ({size / 1e6:.0f} MB, {components} components), {args.repeat} runs")
    for name, key in (("docker image save", "docker_image_save_s"), ("SBOM", "sbom_s")):
        value = results[key]
        assert isinstance(value, dict)
        print(
            f"  {name:<18} median {value['median']:7.2f}s"
            f"  min {value['min']:7.2f}s  max {value['max']:7.2f}s"
        )
    print(f"  ratio SBOM / save  {results['ratio']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
