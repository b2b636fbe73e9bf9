"""CST's ``metadataTest`` as a metadata check, read from the image config without running it
(docs/structure-tests.md)."""

from __future__ import annotations

import re
from typing import Any

from imagefactory.spec.cst.fields import ENV_VAR_KEYS, FieldReader, kind
from imagefactory.spec.cst.goregex import RegexProblem, exact_regex, go_regex
from imagefactory.spec.models import ENV_NAME_PATTERN, MetadataCheck
from imagefactory.spec.yamldoc import KeyPath

METADATA_KEYS = (
    "envVars",
    "unboundEnvVars",
    "env",
    "unboundEnv",
    "exposedPorts",
    "unexposedPorts",
    "entrypoint",
    "cmd",
    "workdir",
    "volumes",
    "unmountedVolumes",
    "labels",
    "user",
)


class MetadataTest(FieldReader):
    """The metadata test of a CST document."""

    def metadata(self, value: Any, path: KeyPath) -> MetadataCheck | None:
        if value is None:
            return None
        test = self.mapping(value, path, METADATA_KEYS)
        if test is None:
            return None
        before = len(self.issues)
        for old_key, key in (("env", "envVars"), ("unboundEnv", "unboundEnvVars")):
            if old_key in test:
                self.unsupported(
                    (*path, old_key),
                    None,
                    f"container-structure-test 1.13.0 renamed it to '{key}' (PR #314); since "
                    f"then it rejects '{old_key}' in a YAML file (field {old_key} not found in "
                    "type v2.MetadataTest) and ignores it in a JSON file",
                    f"rename it to '{key}'",
                )
        for key, why in (
            ("unboundEnvVars", "a metadata check cannot require a variable to be unset"),
            ("volumes", "a metadata check has no volumes"),
            ("unmountedVolumes", "a metadata check has no volumes"),
        ):
            if test.get(key):
                self.unsupported((*path, key), None, why, f"remove '{key}'")
        env: dict[str, str] = {}
        for index, item in enumerate(self.items(test.get("envVars"), (*path, "envVars"))):
            self._metadata_env(item, (*path, "envVars", index), env)
        labels: dict[str, list[str]] = {}
        labels_exact: dict[str, str] = {}
        for index, item in enumerate(self.items(test.get("labels"), (*path, "labels"))):
            self._label(item, (*path, "labels", index), labels, labels_exact)
        entrypoint = self.texts(test.get("entrypoint"), (*path, "entrypoint"))
        cmd = self.texts(test.get("cmd"), (*path, "cmd"))
        workdir = self.text(test.get("workdir"), (*path, "workdir")) or None
        user = self.text(test.get("user"), (*path, "user")) or None
        # CST compares port numbers whatever the protocol. "Exposed" becomes N/tcp (stricter
        # for a UDP-only port); "not exposed" becomes neither N/tcp nor N/udp (the same).
        exposed = [
            f"{n}/tcp" for n in self._ports(test.get("exposedPorts"), (*path, "exposedPorts"))
        ]
        unexposed = [
            f"{n}/{protocol}"
            for n in self._ports(test.get("unexposedPorts"), (*path, "unexposedPorts"))
            for protocol in ("tcp", "udp")
        ]
        label_regexes: dict[str, str] = {}
        for key, patterns in labels.items():
            # The engine matches label values with re.fullmatch; CST searches. An exact value
            # (\A…\Z) means the same either way; anything else takes the joined form.
            exact = len(patterns) == 1 and patterns[0] == exact_regex(labels_exact.get(key, ""))
            joined = self.combined(patterns, [], (*path, "labels"), f"label {key}", whole=not exact)
            if joined is not None:
                label_regexes[key] = joined
        if len(self.issues) > before:
            return None
        return self.model(
            lambda: MetadataCheck(
                env=env,
                labels=label_regexes,
                entrypoint=entrypoint,
                cmd=cmd,
                workdir=workdir,
                user=user,
                exposed_ports=exposed,
                unexposed_ports=unexposed,
            ),
            path,
            None,
        )

    def _entry(self, item: Any, path: KeyPath) -> tuple[str | None, str | None, bool] | None:
        """A ``{key, value, isRegex}`` entry (None: not a mapping); an absent value is ""."""
        entry = self.mapping(item, path, ENV_VAR_KEYS)
        if entry is None:
            return None
        key = self.text(entry.get("key"), (*path, "key"), required=True)
        value = self.text(entry.get("value"), (*path, "value"))
        value = "" if value is None and entry.get("value") is None else value
        return key, value, self.boolean(entry.get("isRegex"), (*path, "isRegex"), False)

    def _metadata_env(self, item: Any, path: KeyPath, env: dict[str, str]) -> None:
        entry = self._entry(item, path)
        if entry is None:
            return
        key, value, is_regex = entry
        if is_regex:
            self.unsupported(
                (*path, "isRegex"),
                None,
                "metadata env values are compared exactly; a regex cannot be expressed",
                "write the exact value and drop isRegex",
            )
            return
        if key is None or value is None:
            return
        if not re.fullmatch(ENV_NAME_PATTERN, key):
            self.issue((*path, "key"), f"'{key}' is not an environment variable name")
            return
        if key in env and env[key] != value:
            self.issue(
                path,
                f"'{key}' is expected twice with different values, so the test can never pass",
            )
            return
        env[key] = value

    def _label(
        self, item: Any, path: KeyPath, labels: dict[str, list[str]], exact: dict[str, str]
    ) -> None:
        entry = self._entry(item, path)
        if entry is None:
            return
        key, value, is_regex = entry
        if key is None or value is None:
            return
        if is_regex:
            try:
                pattern = go_regex(value)
            except RegexProblem as exc:
                self.issue(
                    (*path, "value"), f"label {key}: regex {value!r}: {exc.message}", exc.hint
                )
                return
        else:
            pattern = exact_regex(value)
            exact[key] = value
        labels.setdefault(key, []).append(pattern)

    def _ports(self, value: Any, path: KeyPath) -> list[str]:
        result = []
        for index, item in enumerate(self.items(value, path)):
            at = (*path, index)
            text = str(item) if isinstance(item, int) and not isinstance(item, bool) else item
            if not isinstance(text, str):
                self.issue(at, f"expected a port number, got {kind(item)}")
            elif "/" in text:
                self.issue(
                    at,
                    f"'{text}': container-structure-test compares port numbers only, "
                    "so a protocol suffix never matches",
                    f"write '{text.partition('/')[0]}'",
                )
            elif not (text.isdigit() and 1 <= int(text) <= 65535):
                self.issue(at, f"'{text}' is not a port number (1-65535)")
            else:
                result.append(text)
        return result
