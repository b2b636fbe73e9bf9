"""The grammars of the strings an author writes: what may reach a Dockerfile, a shell or a path.

Every check here refuses rather than repairs, with the expected form and a hint (carried in the
error's context, see ``issues.py``). Values are shown with ``repr`` so that a newline or an
escape sequence in them is visible, not acted on. The renderer escapes on output as well: a
value these grammars let through still cannot become an instruction.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from pydantic_core import PydanticCustomError

#: C0 controls, DEL, C1 controls and the Unicode line and paragraph separators.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: The same, less tab and newline: what a multi-line value (an exec-form argument, a regex) may hold.
CONTROL_BUT_TAB_NEWLINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
#: The same, less tab: what an ENV or LABEL value may hold (a Dockerfile instruction ends at a
#: line break whatever the quoting, so Docker cannot store one there).
CONTROL_BUT_TAB = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")

#: Debian policy 5.6.1 (name), 5.6.12 (version); an architecture qualifier as apt takes it.
DEBIAN_NAME = r"[a-z0-9][a-z0-9+.-]+"
DEBIAN_ARCH = r"[a-z0-9][a-z0-9-]*"
DEBIAN_VERSION = r"(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*"
#: A POSIX (shadow useradd) account name, less the trailing '$' of Samba machine accounts:
#: '$' is expanded by Docker and by the shell.
POSIX_NAME = r"[a-z_][a-z0-9_-]{0,31}"
#: USER / --chown: a name or a numeric id, optionally ':' and a group name or id.
ACCOUNT = rf"(?:{POSIX_NAME}|[0-9]+)(?::(?:{POSIX_NAME}|[0-9]+))?"
#: Docker's label key rule: lowercase alphanumerics separated by single '.' or '-'.
LABEL_KEY = r"[a-z0-9]+(?:[.-][a-z0-9]+)*"
#: Characters of one path segment: letters, digits and a few punctuation marks no shell or
#: Dockerfile reads specially.
PATH_SEGMENT = r"[A-Za-z0-9._+@%,:=-]+"
PORT = r"([1-9][0-9]{0,4})(?:/(tcp|udp))?"

PATH_HINT = "letters, digits and . _ - + @ % , : = between single '/'; no spaces, '.' or '..'"


def refuse(message: str, hint: str) -> PydanticCustomError:
    """A validation error whose hint ``issues.py`` shows on its own line."""
    return PydanticCustomError("grammar", "{message}", {"message": message, "hint": hint})


def shown(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _no_control(controls: re.Pattern[str], found: str, hint: str) -> Callable[[str], str]:
    """A validator that refuses a value in which ``controls`` finds a character."""

    def check(value: str) -> str:
        if controls.search(value):
            raise refuse(f"{shown(value)} contains {found}", hint)
        return value

    return check


single_line = _no_control(
    CONTROL,
    "a control character (newline, tab, escape …)",
    "write it on one line, without control characters",
)
multi_line = _no_control(
    CONTROL_BUT_TAB_NEWLINE,
    "a control character other than tab or newline",
    "remove it (carriage returns, NUL and escape sequences are never kept)",
)
#: An ENV or LABEL value: any text on one line (tabs kept; ``$`` kept as written).
config_value = _no_control(
    CONTROL_BUT_TAB,
    "a line break or a control character",
    "an ENV or LABEL value is one line: a Dockerfile instruction ends at a line break, "
    "so Docker cannot store one there",
)


def _grammar(pattern: str, expected: str, hint: str) -> Callable[[str], str]:
    """A validator that takes a value matching ``pattern`` whole and refuses any other."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise refuse(f"{shown(value)} is not {expected}", hint)
        return value

    return check


_DEBIAN_HINT = "names are lowercase letters, digits and + . - (at least 2)"
debian_package = _grammar(
    rf"{DEBIAN_NAME}(?::{DEBIAN_ARCH})?(?:={DEBIAN_VERSION})?",
    "a Debian package: NAME[:ARCH][=VERSION]",
    f"{_DEBIAN_HINT}, e.g. curl=7.88.1-10+deb12u8",
)
debian_package_name = _grammar(
    rf"{DEBIAN_NAME}(?::{DEBIAN_ARCH})?",
    "a Debian package name: NAME[:ARCH]",
    f"{_DEBIAN_HINT}, e.g. libgomp1",
)
debian_version = _grammar(
    DEBIAN_VERSION,
    "a Debian version: [EPOCH:]UPSTREAM[-REVISION]",
    "a digit first, then letters, digits and . + ~ - (policy 5.6.12), e.g. 2.36-9+deb12u10",
)
debian_arch = _grammar(DEBIAN_ARCH, "a Debian architecture", "e.g. amd64 or arm64")
posix_name = _grammar(
    POSIX_NAME,
    "a user or group name",
    "a lowercase letter or '_', then lowercase letters, digits, '_' or '-'; at most 32",
)
account = _grammar(
    ACCOUNT,
    "USER or USER:GROUP",
    "user and group names (app, www-data) or numeric ids (10001:10001)",
)
#: A cron field: numbers, ranges, steps, lists, *, ? and month or weekday names (JAN, MON).
_CRON_FIELD = r"(?:[0-9A-Za-z*?]+(?:-[0-9A-Za-z]+)?(?:/[0-9]+)?)(?:,[0-9A-Za-z*?]+(?:-[0-9A-Za-z]+)?(?:/[0-9]+)?)*"
cron_schedule = _grammar(
    rf"(?:@(?:yearly|annually|monthly|weekly|daily|midnight|hourly)|{_CRON_FIELD}(?: {_CRON_FIELD}){{4}})",
    "a cron schedule: five fields (minute hour day-of-month month day-of-week) or a macro",
    "e.g. '0 2 * * *' (02:00 every day), '*/15 * * * *' or @daily; fields are separated "
    "by one space",
)
#: The only variables a registry's url or namespace may come from: GitLab's own CI_REGISTRY,
#: and IMAGEFACTORY_*_REGISTRY / IMAGEFACTORY_*_NAMESPACE. A catalog change cannot name a
#: secret here (a password read as a host name would leave in a DNS query and a TLS handshake).
registry_url_env = _grammar(
    r"CI_REGISTRY|IMAGEFACTORY_[A-Z0-9_]+_REGISTRY",
    "a variable a registry host may come from",
    "CI_REGISTRY (GitLab's container registry) or IMAGEFACTORY_<NAME>_REGISTRY; no other "
    "variable: a secret must never become a host name",
)
registry_namespace_env = _grammar(
    r"IMAGEFACTORY_[A-Z0-9_]+_NAMESPACE",
    "a variable a registry namespace may come from",
    "IMAGEFACTORY_<NAME>_NAMESPACE (e.g. set to $CI_PROJECT_PATH/dev); no other variable",
)
label_key = _grammar(
    rf"(?=.{{1,255}}\Z){LABEL_KEY}",
    "a label key",
    "reverse-DNS style: lowercase letters and digits separated by single '.' or '-' "
    "(com.example.team)",
)
_SEGMENTS = rf"(?!\.\.?(?:/|\Z)){PATH_SEGMENT}(?:/(?!\.\.?(?:/|\Z)){PATH_SEGMENT})*"
absolute_path = _grammar(
    rf"(?=.{{1,4096}}\Z)/(?:{_SEGMENTS})?",
    "an absolute, normalised path in the image",
    PATH_HINT,
)
relative_path = _grammar(
    _SEGMENTS,
    "a relative path that stays inside its folder",
    f"relative to the folder it lives in; {PATH_HINT}",
)


def source_path(value: str) -> str:
    """``files[].src``: relative; its name ends up in the Dockerfile's COPY line."""
    pure = PurePosixPath(value)
    if pure.is_absolute() or ".." in pure.parts:
        return value  # checks.py says why, relative to the image folder
    return relative_path(value)


#: ``wheels:`` entries: a relative path whose file name ends in ``.whl`` and may hold ``*``
#: (``dist/imagefactory-*.whl``); a wheel file name's characters (PEP 427) and no other glob.
WHEEL_FILE = r"[A-Za-z0-9*][A-Za-z0-9_.+*-]*\.whl"
wheel_pattern = _grammar(
    rf"(?:(?!\.\.?/){PATH_SEGMENT}/)*{WHEEL_FILE}",
    "a wheel file in the image folder",
    "a relative path ending in .whl, '*' only in the file name (e.g. dist/imagefactory-*.whl)",
)


def port(value: str) -> str:
    match = re.fullmatch(PORT, value)
    if match is None or int(match.group(1)) > 65535:
        raise refuse(
            f"{shown(value)} is not a port",
            '1-65535 in ASCII digits, optionally /tcp or /udp (8080, "9090/udp")',
        )
    return value


def regex(value: str) -> str:
    try:
        with warnings.catch_warnings():  # "possible nested set" is advice, not an error
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(value)
    except (re.error, RecursionError, OverflowError) as exc:  # nesting, repeat counts too large
        raise refuse(
            f"{shown(value)} is not a regular expression: {exc}",
            "Python 're' syntax; escape . * + ? ( ) [ ] { } | \\ with '\\' to match them as text",
        ) from exc
    return value


def url(value: str) -> str:
    """A mirror or proxy URL: http(s), a host, and no control characters or spaces."""
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid or re.search(r"\s", value) or CONTROL.search(value):
        raise refuse(
            f"{shown(value)} is not an http(s) URL",
            "http://HOST[:PORT]/PATH or https://…, without spaces",
        )
    return value


def has_credentials(value: str) -> bool:
    """A URL with user-info (``https://user:pass@host``, ``https://token@host``) in it."""
    with_password = r"://[^/?#@\s:]*:[^/?#@\s]*@"
    web_user = r"https?://[^/?#@\s]+@"
    return re.search(f"{with_password}|{web_user}", value, re.IGNORECASE) is not None
