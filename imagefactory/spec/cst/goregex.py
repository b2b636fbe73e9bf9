"""Go regular expressions (what container-structure-test uses) as Python ``re`` patterns.

CST searches with Go's RE2 syntax; the engine uses Python's ``re``. ``go_regex`` rewrites the
spellings that differ and refuses what RE2 cannot compile or Python cannot express the same way.
"""

from __future__ import annotations

import re


class RegexProblem(ValueError):
    """A CST regex that RE2 would reject, or that Python cannot express the same way."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
# Escapes that mean the same in RE2 and Python; a letter or digit outside this set is refused.
_SHARED_ESCAPES = frozenset("aftnrvAbBdDsSwW0")
_LEADING_FLAGS = re.compile(r"\(\?([a-zA-Z]+)\)")
_FLAG_GROUP = re.compile(r"([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])")
_MULTILINE = re.compile(r"\(\?[a-zA-Z]*m[a-zA-Z-]*[:)]")


def go_regex(pattern: str) -> str:
    """The Python pattern that ``re.search`` uses to match what Go's ``MatchString`` matches.

    Go's ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII-only while Python's also match other
    Unicode digits, letters and spaces; that difference is accepted.
    """
    flags = ""
    start = 0
    leading = _LEADING_FLAGS.match(pattern)
    if leading:
        flags = leading.group(1)
        start = leading.end()
        _check_flags(flags)
    multiline = "m" in flags or bool(_MULTILINE.search(pattern))
    out: list[str] = []
    i = start
    n = len(pattern)
    in_class = False
    class_start = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            piece, i = _escape(pattern, i, in_class)
            out.append(piece)
            class_start = False
            continue
        if in_class:
            if c == "]" and not class_start:
                in_class = False
                out.append("]")
            elif c == "]":
                out.append("\\]")
            elif pattern.startswith("[:", i):
                piece, i = _posix_class(pattern, i)
                out.append(piece)
                class_start = False
                continue
            elif c in "[&~|":
                out.append("\\" + c)  # literal in both; escaped so Python sees no nested set
            else:
                out.append(c)
            class_start = False
            i += 1
            continue
        if c == "[":
            in_class = True
            class_start = True
            out.append("[")
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            continue
        if pattern.startswith("(?", i):
            piece, i = _group_open(pattern, i)
            out.append(piece)
            continue
        out.append("\\Z" if c == "$" and not multiline else c)
        i += 1
    if in_class:
        raise RegexProblem("a character class is not closed: missing ']'")
    result = "".join(out)
    if flags:
        result = f"(?{flags}:{result})"
    _compile(result)
    return result


def _check_flags(flags: str) -> None:
    if "U" in flags:
        raise RegexProblem(
            "the ungreedy flag (?U) has no Python equivalent",
            "write the lazy quantifiers out (*? +? ??) and drop the U flag",
        )
    unknown = sorted(set(flags) - set("ims"))
    if unknown:
        raise RegexProblem(f"unknown regex flag '{unknown[0]}': Go knows i, m, s and U")


def _escape(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    if i + 1 >= len(pattern):
        raise RegexProblem("the pattern ends with a lone backslash")
    nxt = pattern[i + 1]
    if nxt == "Q" and not in_class:
        end = pattern.find("\\E", i + 2)
        literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
        return re.escape(literal), len(pattern) if end < 0 else end + 2
    if nxt == "z" and not in_class:
        return "\\Z", i + 2
    if nxt == "x" and pattern.startswith("{", i + 2):
        end = pattern.find("}", i + 3)
        digits = pattern[i + 3 : end] if end > 0 else ""
        if not re.fullmatch(r"[0-9a-fA-F]{1,6}", digits) or int(digits, 16) > 0x10FFFF:
            raise RegexProblem(f"invalid escape \\x{{{digits}")
        return f"\\U{int(digits, 16):08x}", end + 1
    if nxt in "pP":
        raise RegexProblem(
            f"Unicode classes (\\{nxt}…) are not supported by Python's re module",
            "spell the characters out in a class, e.g. [A-Za-z] for \\pL on ASCII text",
        )
    if nxt.isdigit() and nxt != "0":
        raise RegexProblem(
            f"\\{nxt} is a backreference or octal escape, which Go's RE2 syntax rejects",
            "container-structure-test cannot compile this pattern; rewrite it without \\1…\\9",
        )
    if nxt.isalnum() and nxt not in _SHARED_ESCAPES and nxt != "x":
        raise RegexProblem(f"\\{nxt} is not an escape of Go's RE2 syntax")
    return pattern[i : i + 2], i + 2


def _posix_class(pattern: str, i: int) -> tuple[str, int]:
    end = pattern.find(":]", i + 2)
    name = pattern[i + 2 : end] if end > 0 else ""
    if name.startswith("^"):
        raise RegexProblem(
            f"the negated POSIX class [:{name}:] has no Python equivalent inside a class",
            "use a negated class instead, e.g. [^0-9] for [[:^digit:]]",
        )
    body = _POSIX_CLASSES.get(name)
    if body is None:
        return "\\[", i + 1  # not a POSIX class: a literal '['
    return body, end + 2


def _group_open(pattern: str, i: int) -> tuple[str, int]:
    rest = pattern[i + 2 :]
    if rest.startswith(("=", "!", "<=", "<!", ">")):
        raise RegexProblem(
            "lookaround and atomic groups ((?= (?! (?<= (?<! (?>) are not RE2 syntax",
            "container-structure-test cannot compile this pattern; use excludedOutput or "
            "excludedContents for 'must not match'",
        )
    if rest.startswith("P<"):
        return "(?P<", i + 4
    if rest.startswith("<"):
        return "(?P<", i + 3  # Go 1.22's (?<name>…) is Python's (?P<name>…)
    flags = _FLAG_GROUP.match(rest)
    if flags is None:
        raise RegexProblem(f"unknown group syntax '(?{rest[:1]}'")
    on, off, end = flags.group(1), flags.group(2) or "", flags.group(3)
    _check_flags(on + off)
    if end == ")":
        raise RegexProblem(
            "flags in the middle of a pattern ((?i) after the start) have no Python equivalent",
            "put the flags at the very start, or scope them: (?i:text)",
        )
    return pattern[i : i + 2 + flags.end()], i + 2 + flags.end()


def _compile(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise RegexProblem(f"Python cannot compile the pattern: {exc}") from exc
    except (RecursionError, OverflowError) as exc:
        raise RegexProblem("the pattern is too large or nests too deeply") from exc


def combine_regexes(expected: list[str], excluded: list[str], *, whole: bool = False) -> str | None:
    """One Python regex that matches a text iff every ``expected`` pattern is found somewhere in
    it and no ``excluded`` one is (each pattern as ``re.search`` finds it).

    The joined form (``\\A(?=…)(?!…)[\\s\\S]*``) gives the same answer with ``re.search``,
    ``re.match`` and ``re.fullmatch``. A single expected pattern is returned as it is, for
    ``re.search``, unless ``whole`` asks for the joined form anyway (for fullmatch users).
    """
    if not expected and not excluded:
        return None
    if len(expected) == 1 and not excluded and not whole:
        return expected[0]
    parts = ["\\A"]
    parts += [f"(?=[\\s\\S]*?(?:{p}))" for p in expected]
    parts += [f"(?![\\s\\S]*?(?:{p}))" for p in excluded]
    parts.append("[\\s\\S]*")
    combined = "".join(parts)
    _compile(combined)
    return combined


def exact_regex(value: str) -> str:
    """A regex that matches ``value`` and nothing else, with ``re.search`` or ``re.fullmatch``."""
    return f"\\A{re.escape(value)}\\Z"
