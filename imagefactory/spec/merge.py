"""The one merge rule set: project defaults → image.yaml → variant overlays, in that order.

For every key the later layer *sets* (keys it leaves out never reset anything):

* mappings (``env``, ``labels``, ``build_args``, ``tests.metadata.env`` …) merge key by key,
  the later layer winning on a shared key;
* lists (``packages``, ``pip``, ``files``, ``ports``, ``secrets``, ``tests.files`` …) append the
  later layer's items that are not already there, keeping order;
* ``entrypoint``, ``cmd``, ``healthcheck``, ``bootstrap`` and ``platforms`` are replaced whole —
  a command, a rootfs recipe or a set of platforms is one unit, appending to it would never be
  what the author meant (a child narrows its parent's platforms);
* nested sections (``tests``, ``tests.packages`` …) merge recursively by these same rules;
* any other value (``user``, ``workdir``, ``from`` …) is replaced.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

REPLACED_WHOLE = frozenset({"entrypoint", "cmd", "healthcheck", "bootstrap", "platforms"})

M = TypeVar("M", bound=BaseModel)


def merge_layer(base: M, overlay: BaseModel) -> M:
    """Return ``base`` with the keys ``overlay`` sets merged in; both inputs stay untouched."""
    updates: dict[str, Any] = {}
    for name in overlay.model_fields_set & type(base).model_fields.keys():
        updates[name] = _merge_value(name, getattr(base, name), getattr(overlay, name))
    return base.model_copy(update=updates)


#: Values that replace whatever they meet; told apart first because pydantic's metaclass makes
#: ``isinstance(value, BaseModel)`` a Python call (a third of a 5,000-image catalog's merges).
_SCALARS = (str, int, float)


def _merge_value(name: str, old: Any, new: Any) -> Any:
    if name in REPLACED_WHOLE or old is None or new is None or isinstance(new, _SCALARS):
        return new
    if isinstance(new, dict):
        return {**old, **new}
    if isinstance(new, list):
        return [*old, *(item for item in new if item not in old)]
    if isinstance(new, BaseModel):
        return merge_layer(old, new)
    return new
