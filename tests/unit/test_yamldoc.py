from pathlib import Path

from imagefactory.spec.yamldoc import read_yaml


def test_records_the_line_of_every_key(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("name: x\nfiles:\n  - src: a\n    dest: /a\nenv:\n  A: b\n")
    doc = read_yaml(path)
    assert doc.data == {"name": "x", "files": [{"src": "a", "dest": "/a"}], "env": {"A": "b"}}
    assert doc.lines[("name",)] == 1
    assert doc.lines[("files", 0)] == 3
    assert doc.lines[("files", 0, "dest")] == 4
    assert doc.lines[("env", "A")] == 6
    assert doc.line_of(("env", "A", "deeper")) == 6
    assert doc.problems == []


def test_syntax_error_is_a_problem_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("name: x\nenv:\n  A: [b\nother: 1\n")
    doc = read_yaml(path)
    assert doc.data is None
    [problem] = doc.problems
    assert problem.message.startswith("invalid YAML")
    assert problem.line is not None and problem.line >= 3


def test_duplicate_keys_are_problems(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("name: x\nname: y\n")
    [problem] = read_yaml(path).problems
    assert problem.key_path == ("name",)
    assert problem.line == 2
    assert "duplicate key" in problem.message


def test_unsafe_tags_and_self_references_do_not_escape(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("a: !!python/object:os.system {}\n")
    assert read_yaml(path).problems
    path.write_text("a: &x [*x]\n")
    assert read_yaml(path).problems


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")
    assert "cannot read" in read_yaml(path).problems[0].message


def test_key_paths_quote_keys_that_would_read_ambiguously() -> None:
    from imagefactory.spec.issues import format_key_path

    assert format_key_path(("files", 0, "mode")) == "files[0].mode"
    assert (
        format_key_path(("labels", "org.opencontainers.image.title"))
        == "labels.org.opencontainers.image.title"
    )
    assert format_key_path((".",)) == '["."]'
    assert format_key_path(("env", " X")) == 'env[" X"]'
    assert format_key_path(("env", "")) == 'env[""]'


def test_values_that_are_not_plain_data_are_problems_with_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(
        "name: x\npackages: !!set {curl: null}\ndescription: 2024-01-31\n"
        "files:\n  - !!binary aGk=\nlabels: !!omap [{a: b}]\n"
    )
    doc = read_yaml(path)
    assert doc.data is None  # never constructed
    found = {(p.key_path, p.line): p.hint or "" for p in doc.problems}
    assert set(found) == {
        (("packages",), 2),
        (("description",), 3),
        (("files", 0), 5),
        (("labels",), 6),
    }
    assert "write a list" in found[("packages",), 2]
    assert "quote it" in found[("description",), 3]


def test_quoted_dates_and_merge_keys_are_plain_data(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text('base: &b {x: 1}\nother:\n  <<: *b\n  when: "2024-01-31"\n  n: !!str 5\n')
    doc = read_yaml(path)
    assert doc.problems == []
    assert doc.data["other"] == {"x": 1, "when": "2024-01-31", "n": "5"}
