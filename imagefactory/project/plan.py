"""The plan: in build order, what would be (re)built and why. Needs no Docker and no network."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from imagefactory.errors import UserError
from imagefactory.project.hashing import ContentInputs, content_inputs
from imagefactory.project.paths import state_file
from imagefactory.project.state import ImageRecord, State, load_state
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.parents import describe_parent

REASONS = {
    "spec": "spec changed",
    "files": "file changed",
    "templates": "template changed",
    "parent": "parent changed",
    "refresh": "refreshed",
    "lock": "lock changed",
    "platforms": "platforms changed",
}


@dataclass(frozen=True)
class PlanEntry:
    ref: str
    version: str
    parent: str
    inputs: ContentInputs
    reasons: tuple[str, ...]

    @property
    def action(self) -> str:
        return "build" if self.reasons else "skip"

    def as_dict(self) -> dict[str, object]:
        return {
            "image": self.ref,
            "version": self.version,
            "parent": self.parent,
            "content_hash": self.inputs.content_hash,
            "action": self.action,
            "reasons": list(self.reasons),
            # only for an image that names them: a single-platform plan reads as it did
            **({"platforms": self.platform_hashes()} if self.inputs.platforms else {}),
        }

    def platform_hashes(self) -> dict[str, str]:
        """Each platform the image is built for, with its content hash (none: the host's)."""
        return {name: self.inputs.platform_hash(name) for name in self.inputs.platforms.split(",")}


def make_plan(catalog: Catalog, state: State, selected: list[str] | None = None) -> list[PlanEntry]:
    """Plan entries for ``selected`` refs (all when None), parents listed before children."""
    entries = []
    for ref, inputs in content_inputs(catalog).items():
        if selected is not None and ref not in selected:
            continue
        image = catalog.images[ref]
        entries.append(
            PlanEntry(
                ref,
                image.spec.version,
                describe_parent(image.parent),
                inputs,
                rebuild_reasons(inputs, state.images.get(ref)),
            )
        )
    return entries


def plan_images(
    catalog: Catalog, images: list[CatalogImage], *, rebuild_all: bool = False
) -> list[PlanEntry]:
    """The plan of ``images`` against the catalog's state file; with ``rebuild_all``, as if
    nothing had been built."""
    state = State() if rebuild_all else load_state(state_file(catalog))
    return make_plan(catalog, state, [image.ref for image in images])


def rebuild_reasons(inputs: ContentInputs, record: ImageRecord | None) -> tuple[str, ...]:
    """Why an image with ``inputs`` needs a build, given the state ``record`` of its last one:
    the words ``plan`` shows and ``build`` reports; none when its content is unchanged."""
    if record is None:
        return ("new",)
    if record.content_hash == inputs.content_hash:
        return ()
    changed = tuple(REASONS[k] for k, v in asdict(inputs).items() if record.inputs.get(k, "") != v)
    return changed or ("hash scheme changed",)


def built_records(
    catalog: Catalog, images: list[CatalogImage], state: State
) -> list[tuple[CatalogImage, ImageRecord]]:
    """Each image with the state record of its build; refused when it was never built or its
    content changed since (what test, push and promote act on must be what was built)."""
    inputs = content_inputs(catalog)
    found = []
    for image in images:
        record = state.images.get(image.ref)
        if record is None or record.digest is None or record.repository is None:
            raise UserError(
                f"{image.ref} has not been built yet", hint=f"run: imagefactory build {image.ref}"
            )
        if record.content_hash != inputs[image.ref].content_hash:
            raise UserError(
                f"{image.ref} changed since it was built; it would act on old bytes",
                hint=f"run: imagefactory build {image.ref}",
            )
        found.append((image, record))
    return found
