"""CST's ``fileExistenceTests`` and ``fileContentTests`` as file checks (docs/structure-tests.md)."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from imagefactory.spec.cst.fields import FieldReader, go_expansions
from imagefactory.spec.cst.gomode import GoMode, ModeProblem, parse_go_mode
from imagefactory.spec.models import FileCheck
from imagefactory.spec.yamldoc import KeyPath

# CST's pkg/types/v1 (schemaVersion 1.0.0) has the first four, and takes the path literally.
V1_EXISTENCE_KEYS = ("name", "path", "shouldExist", "permissions")
EXISTENCE_KEYS = (*V1_EXISTENCE_KEYS, "uid", "gid", "isExecutableBy")
CONTENT_KEYS = ("name", "path", "expectedContents", "excludedContents")
EXECUTABLE_BITS = {"any": 0o111, "owner": 0o100, "group": 0o010, "other": 0o001}
EXECUTABLE_BY: dict[str, Literal["owner", "group", "other"] | bool] = {
    "any": True,
    "owner": "owner",
    "group": "group",
    "other": "other",
}


class _FileTest(NamedTuple):
    test: dict[str, Any]
    issues_before: int  # issues already found: more after parsing means this test is bad
    name: str | None
    label: str  # the name, or "#<index>" for a test without one
    path: str | None


class FileTests(FieldReader):
    """The file tests of a CST document."""

    def _file_test(self, item: Any, path: KeyPath, keys: tuple[str, ...]) -> _FileTest | None:
        """What every file test starts with: its mapping, name and path (None: no mapping)."""
        test = self.mapping(item, path, keys)
        if test is None:
            return None
        before = len(self.issues)
        name = self.text(test.get("name"), (*path, "name"), required=True)
        file_path = self.text(test.get("path"), (*path, "path"), required=True)
        return _FileTest(test, before, name, name or f"#{path[-1]}", file_path)

    def existence(self, item: Any, path: KeyPath, *, v1: bool) -> tuple[FileCheck | None, str]:
        head = self._file_test(item, path, V1_EXISTENCE_KEYS if v1 else EXISTENCE_KEYS)
        if head is None:
            return None, ""
        test, before, name, label, file_path = head
        if file_path is not None and not v1 and go_expansions(file_path):
            self.unsupported(
                (*path, "path"),
                label,
                f"CST replaces {go_expansions(file_path)[0]} from the image's environment",
                "write the path out in full",
            )
        exists = self.boolean(test.get("shouldExist"), (*path, "shouldExist"), True)
        permissions = self.text(test.get("permissions"), (*path, "permissions"))
        uid = self._owner_id(test.get("uid"), (*path, "uid"))
        gid = self._owner_id(test.get("gid"), (*path, "gid"))
        executable_by = self.text(test.get("isExecutableBy"), (*path, "isExecutableBy"))
        if not exists:
            for key in ("permissions", "uid", "gid", "isExecutableBy"):
                if test.get(key) not in (None, "", -1):
                    self.issue(
                        (*path, key),
                        f"test '{label}': shouldExist is false, so '{key}' can never be checked",
                        f"remove '{key}'",
                    )
        mode = self._mode(permissions, (*path, "permissions"), label) if permissions else None
        executable = (
            self._executable(executable_by, mode, (*path, "isExecutableBy"), label)
            if mode is not None or not permissions
            else None
        )
        if len(self.issues) > before or name is None or file_path is None:
            return None, label
        check = self.model(
            lambda: FileCheck(
                path=file_path,
                exists=exists,
                type=mode.type if mode else None,
                mode=mode.mode if mode and mode.type != "symlink" else None,
                owner=None if uid is None else str(uid),
                group=None if gid is None else str(gid),
                executable=executable,
            ),
            path,
            label,
        )
        return check, name

    def _owner_id(self, value: Any, path: KeyPath) -> int | None:
        number = self.integer(value, path)
        if number is None or number == -1:  # CST's "not checked"
            return None
        if number < 0:
            self.issue(path, f"expected a user or group id (0 or more), got {number}")
            return None
        return number

    def _mode(self, text: str, path: KeyPath, test: str) -> GoMode | None:
        try:
            mode = parse_go_mode(text)
        except ModeProblem as exc:
            self.issue(path, f"test '{test}': {exc.message}", exc.hint)
            return None
        if mode.type == "symlink" and mode.bits != 0o777:
            self.issue(
                path,
                f"test '{test}': a symlink's permissions are always rwxrwxrwx on Linux, "
                f"so '{text}' never matches",
                "write 'Lrwxrwxrwx'",
            )
            return None
        return mode

    def _executable(
        self, who: str | None, mode: GoMode | None, path: KeyPath, test: str
    ) -> Literal["owner", "group", "other"] | bool | None:
        """CST's isExecutableBy: the execute bit of owner, group, other, or any of them."""
        if not who:
            return None
        bits = EXECUTABLE_BITS.get(who)
        if bits is None:
            self.issue(
                path,
                f"test '{test}': unknown isExecutableBy '{who}'",
                "use one of: " + ", ".join(EXECUTABLE_BITS),
            )
            return None
        if mode is not None and mode.bits & bits == 0:
            self.issue(
                path,
                f"test '{test}': the permissions have no execute bit for '{who}', "
                "so this test can never pass",
            )
            return None
        return EXECUTABLE_BY[who]

    def content(self, item: Any, path: KeyPath) -> tuple[FileCheck | None, str]:
        head = self._file_test(item, path, CONTENT_KEYS)
        if head is None:
            return None, ""
        test, before, name, label, file_path = head
        contains = self.combined(
            self.regexes(test.get("expectedContents"), (*path, "expectedContents"), label),
            self.regexes(test.get("excludedContents"), (*path, "excludedContents"), label),
            (*path, "expectedContents"),
            label,
        )
        if len(self.issues) > before or name is None or file_path is None:
            return None, label
        check = self.model(lambda: FileCheck(path=file_path, contains=contains), path, label)
        return check, name
