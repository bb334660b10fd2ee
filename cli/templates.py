"""``-o jsonpath=TEMPLATE`` and ``-o custom-columns=SPEC``, as kubectl reads them.

A JSONPath template is text with ``{EXPRESSION}`` parts: ``{.items[*].metadata.name}``,
``{.status.podIP}``, string literals ``{"\\n"}`` and ``{range EXPRESSION}...{end}`` loops.
Expressions are evaluated by jsonpath-ng against the same Kubernetes-shaped object ``-o json``
prints (a ``List`` when several objects are shown); several results are joined by a space, as
kubectl does. Custom columns are ``HEADER:EXPRESSION`` pairs, evaluated on each object.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from shoal.errors import InvalidManifest

_PART = re.compile(r'\{((?:[^{}"]|"(?:[^"\\]|\\.)*")*)\}')


@dataclass
class _Node:
    kind: str
    """``text``, ``path``, ``range`` or ``end``."""
    value: str
    body: list[_Node] | None = None


@functools.lru_cache(maxsize=64)
def _expression(text: str, where: str) -> Any:
    path = text.strip()
    if path in ("", "."):
        path = "$"
    elif path.startswith("."):
        path = "$" + path
    elif not path.startswith("$"):
        path = "$." + path
    from jsonpath_ng.ext import parse  # here: only templates need the parser

    try:
        return parse(path)
    except Exception as err:  # its lexer's and parser's errors, and what they let through
        raise InvalidManifest([f"{where}: {text!r} is not a JSONPath expression: {err}"]) from None


def _tokens(template: str) -> list[_Node]:
    found, last = [], 0
    for match in _PART.finditer(template):
        if match.start() > last:
            found.append(_Node("text", template[last : match.start()]))
        inner = match.group(1).strip()
        if inner.startswith('"') and inner.endswith('"') and len(inner) >= 2:
            try:
                found.append(_Node("text", json.loads(inner, strict=False)))
            except json.JSONDecodeError:
                raise InvalidManifest([f"-o jsonpath: {inner} is not a string literal"]) from None
        elif inner.startswith("range "):
            found.append(_Node("range", inner[len("range ") :]))
        elif inner == "end":
            found.append(_Node("end", ""))
        else:
            found.append(_Node("path", inner))
        last = match.end()
    if last < len(template):
        found.append(_Node("text", template[last:]))
    return found


def _nest(tokens: list[_Node], where: str) -> list[_Node]:
    root: list[_Node] = []
    stack: list[list[_Node]] = [root]
    for token in tokens:
        if token.kind == "range":
            token.body = []
            stack[-1].append(token)
            stack.append(token.body)
        elif token.kind == "end":
            if len(stack) == 1:
                raise InvalidManifest([f"{where}: {{end}} without a {{range}}"])
            stack.pop()
        else:
            stack[-1].append(token)
    if len(stack) != 1:
        raise InvalidManifest([f"{where}: a {{range}} without its {{end}}"])
    return root


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _render(nodes: list[_Node], data: Any, where: str) -> str:
    out = []
    for node in nodes:
        if node.kind == "text":
            out.append(node.value)
        elif node.kind == "path":
            out.append(" ".join(_text(m.value) for m in _expression(node.value, where).find(data)))
        else:
            assert node.body is not None
            for match in _expression(node.value, where).find(data):
                out.append(_render(node.body, match.value, where))
    return "".join(out)


def jsonpath(template: str, data: Any) -> str:
    """The template filled in from ``data``."""
    where = "-o jsonpath"
    return _render(_nest(_tokens(template), where), data, where)


def values_at(path: str, data: Any, where: str) -> list[Any]:
    """The values one JSONPath expression (``.metadata.name`` or ``{.metadata.name}``) finds."""
    return [match.value for match in _expression(path.strip().strip("{}"), where).find(data)]


def custom_columns(spec: str, objects: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of ``HEADER:EXPRESSION,...`` over each object."""
    where = "-o custom-columns"
    columns = []
    for part in spec.split(","):
        header, sep, path = part.partition(":")
        if not sep or not header.strip() or not path.strip():
            raise InvalidManifest([f"{where}: {part!r}: use HEADER:EXPRESSION, such as NAME:.metadata.name"])
        columns.append((header.strip(), _expression(path.strip().strip("{}"), where)))
    rows = []
    for obj in objects:
        cells = []
        for _, expression in columns:
            values = [_text(m.value) for m in expression.find(obj)]
            cells.append(",".join(values) if values else "<none>")
        rows.append(cells)
    return [header for header, _ in columns], rows
