"""The one process runner: output as lines, or exactly as written."""

from __future__ import annotations

import sys

from imagefactory import tools

PRINT = [sys.executable, "-c", "import sys; sys.stdout.write('one\\ntwo\\n\\n')"]


def test_output_lines_are_joined_without_a_last_newline() -> None:
    seen: list[str] = []
    result = tools.run(PRINT, on_line=seen.append)
    assert result.output == "one\ntwo\n"
    assert seen == ["one", "two", ""]


def test_exact_output_is_the_text_as_written() -> None:
    assert tools.run(PRINT, exact_output=True).output == "one\ntwo\n\n"
