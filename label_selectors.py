"""Label selectors as kubectl takes them (``-l``): ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``,
``k notin (a,b)``, ``k`` (has the label) and ``!k`` (has it not), comma-separated and ANDed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from shoal.errors import InvalidManifest

_SET = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s+\(([^()]*)\)\s*$")
_KEY = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    """``=``, ``!=``, ``in``, ``notin``, ``exists`` or ``!``."""
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        match self.operator:
            case "=" | "in":
                return value in self.values
            case "!=" | "notin":
                return value not in self.values  # as in Kubernetes: a missing label matches
            case "exists":
                return value is not None
            case _:
                return value is None


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def __bool__(self) -> bool:
        return bool(self.requirements)


def _split(text: str) -> list[str]:
    """Commas separate requirements, except inside ``( )``."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _key(key: str, part: str) -> str:
    key = key.strip()
    if not _KEY.match(key):
        raise InvalidManifest([f"--selector: {part.strip()!r}: {key!r} is not a label key"])
    return key


def parse_selector(text: str | None) -> Selector:
    if not text or not text.strip():
        return Selector()
    requirements = []
    for part in _split(text):
        if not part.strip():
            raise InvalidManifest([f"--selector: {text!r} has an empty requirement"])
        found = _SET.match(part)
        if found:
            values = frozenset(v.strip() for v in found.group(3).split(",") if v.strip())
            requirements.append(Requirement(_key(found.group(1), part), found.group(2), values))
        elif "!=" in part:
            key, _, value = part.partition("!=")
            requirements.append(Requirement(_key(key, part), "!=", frozenset({value.strip()})))
        elif "=" in part:
            key, _, value = part.partition("=")
            requirements.append(
                Requirement(_key(key, part), "=", frozenset({value.strip().removeprefix("=")}))
            )
        elif part.strip().startswith("!"):
            requirements.append(Requirement(_key(part.strip()[1:], part), "!"))
        else:
            requirements.append(Requirement(_key(part, part), "exists"))
    return Selector(tuple(requirements))
