"""The pipeline's fast YAML writer gives exactly PyYAML's bytes, whatever the data (a property
test over shell, YAML and Dockerfile metacharacters, long and multi-line strings)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from imagefactory.render.blockyaml import BlockYaml
from imagefactory.render.gitlab_ci import _dump

TEXT = st.text(
    alphabet=st.sampled_from("ab :#-?&*!|>'\"%@`{}[],\n\t\\$é\x85\u2028 01.~"), max_size=12
)
SCALARS = st.one_of(
    TEXT, st.booleans(), st.integers(), st.none(), st.sampled_from(["true", "1.0", "~", "x" * 1500])
)
DATA = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(TEXT, DATA, min_size=1, max_size=4))
def test_the_same_bytes_as_pyyaml(document: dict[str, Any]) -> None:
    dump = BlockYaml(_dump)
    assert dump.each(document) == [_dump({key: value}) for key, value in document.items()]
    assert dump(document) == _dump(document)
