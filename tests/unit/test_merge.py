"""The documented merge rules: maps merge, lists append, commands and recipes replace whole."""

from imagefactory.spec.merge import merge_layer
from imagefactory.spec.models import ImageLayer, ImageSpec


def spec(**fields: object) -> ImageSpec:
    return ImageSpec.model_validate({"name": "x", "version": "1.0.0", "from": "base", **fields})


def layer(**fields: object) -> ImageLayer:
    return ImageLayer.model_validate(fields)


def test_keys_the_overlay_does_not_set_are_kept() -> None:
    base = spec(user="app", env={"A": "1"}, packages=["curl"])
    assert merge_layer(base, layer()) == base


def test_maps_merge_key_by_key_and_the_overlay_wins() -> None:
    merged = merge_layer(
        spec(env={"A": "1", "B": "2"}, labels={"x": "1"}), layer(env={"B": "3", "C": "4"})
    )
    assert merged.env == {"A": "1", "B": "3", "C": "4"}
    assert merged.labels == {"x": "1"}


def test_lists_append_without_duplicates_in_order() -> None:
    merged = merge_layer(
        spec(packages=["aa", "bb"], ports=[80]), layer(packages=["bb", "cc"], ports=["443/tcp"])
    )
    assert merged.packages == ["aa", "bb", "cc"]
    assert merged.ports == ["80", "443/tcp"]


def test_commands_healthcheck_and_bootstrap_replace_whole() -> None:
    base = spec(entrypoint=["a", "b"], cmd=["c"], healthcheck={"cmd": ["true"], "retries": 5})
    merged = merge_layer(base, layer(entrypoint=["z"], healthcheck={"cmd": ["false"]}))
    assert merged.entrypoint == ["z"]
    assert merged.cmd == ["c"]
    assert merged.healthcheck is not None
    assert merged.healthcheck.cmd == ["false"] and merged.healthcheck.retries == 3


def test_scalars_replace() -> None:
    merged = merge_layer(spec(user="app", workdir="/a"), layer(user="svc", **{"from": "other"}))
    assert (merged.user, merged.workdir, merged.parent) == ("svc", "/a", "other")


def test_nested_sections_merge_recursively() -> None:
    base = spec(
        tests={"packages": {"installed": ["aa"]}, "metadata": {"env": {"A": "1"}}, "non_root": True}
    )
    overlay = layer(
        tests={"packages": {"installed": ["bb"], "absent": ["cc"]}, "metadata": {"env": {"B": "2"}}}
    )
    merged = merge_layer(base, overlay).tests
    assert merged.packages.installed == ["aa", "bb"]
    assert merged.packages.absent == ["cc"]
    assert merged.metadata.env == {"A": "1", "B": "2"}
    assert merged.non_root is True


def test_inputs_are_left_untouched() -> None:
    base = spec(env={"A": "1"}, packages=["aa"])
    merge_layer(base, layer(env={"B": "2"}, packages=["bb"]))
    assert base.env == {"A": "1"} and base.packages == ["aa"]


def test_the_merged_spec_remembers_which_keys_a_layer_set() -> None:
    """Inheritance reads it (spec/inheritance.py): a venv no layer sets is the parent's, even
    when a layer writes the default value itself."""
    base = ImageSpec.model_validate({"name": "x", "version": "1.0.0"})
    unset = merge_layer(merge_layer(base, layer(packages=["curl"])), layer(env={"A": "1"}))
    assert "venv" not in unset.model_fields_set and unset.venv == "/opt/venv"
    written = merge_layer(unset, layer(venv="/opt/venv"))
    assert "venv" in written.model_fields_set and written.venv == "/opt/venv"
