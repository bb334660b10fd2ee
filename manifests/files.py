"""Reading manifest files: YAML documents out of files, folders and standard input, with
where each came from.

What is read here is packed with MessagePack and sent over NATS to the API actor, so the
loader refuses, with one line per problem naming the file, what would crash, hang or
poison that path: more than 3 MiB per request, alias bombs ("billion laughs"), nesting
deeper than 100 levels, mapping keys that are not strings, duplicate keys, tags outside
JSON's data model, and text that is not UTF-8 (or UTF-16 with a byte order mark). Values
are left to validation, except integers beyond 64 bits, which MessagePack cannot carry:
they are kept as the text written, for validation to refuse by field. ``kind: List``
documents (what ``kubectl get -o yaml`` prints) expand into their items.
"""

from __future__ import annotations

import codecs
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.error import Mark
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from shoal.errors import InvalidManifest
from shoal.models.api import ManifestDocument

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

STDIN = Path("-")
"""The path that means standard input, as in ``kubectl apply -f -``."""

STDIN_SOURCE = "<stdin>"

MAX_REQUEST_BYTES = 3 * 2**20
"""Manifest bytes read per request, over all files: Kubernetes' API server limit too."""

MAX_DEPTH = 100
"""Nested mappings and lists, counting what aliases bring in. Real manifests stay under 20;
MessagePack and the recursive code that reads documents give out a few hundred deeper."""

MAX_ALIASED_NODES = 10_000
"""Nodes that aliases may add to one request, over all documents (each use of an alias
adds the nodes of what it names, expanded). What Kubernetes' decoder calls excessive
aliasing: a 611-byte file of nested aliases otherwise expands to a billion nodes."""

MAX_ALIAS_RATIO = 100
"""Nor may aliases add more than this many times the nodes a document is written with."""

MAX_PROBLEMS = 20
"""Problems listed per file before the rest are only counted."""

_TAG = "tag:yaml.org,2002:"
_STR, _MERGE, _VALUE = _TAG + "str", _TAG + "merge", _TAG + "value"
_JSON_TAGS = {_TAG + name for name in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map")}
"""Tags whose values JSON (and so Kubernetes and MessagePack) can hold."""


class _Refused(Exception):
    """A problem the loader found, with where in the text, if known."""

    def __init__(self, problem: str, mark: Mark | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.mark = mark


@dataclass
class ReadBudget:
    """What is left of one request's allowances; shared by every file of one read."""

    bytes_left: int = MAX_REQUEST_BYTES
    aliased_left: int = MAX_ALIASED_NODES


class ManifestLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, bounded: nesting depth checked while composing, so deep input
    never reaches the recursive composer; aliases recorded for ``_Shape`` to count.

    Timestamps load as the text written (Kubernetes reads them as strings, and a date
    object would not pack); integers beyond 64 bits load as their text too.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._start_document()

    def _start_document(self) -> None:
        self.depth = 0
        self.aliases: list[tuple[Node, AliasEvent]] = []

    def compose_document(self) -> Node | None:
        self._start_document()
        return super().compose_document()  # type: ignore[no-any-return]

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            # A collection still being composed has no end yet: `&a [*a]` would be endless.
            if node is not None and node.end_mark is None:
                raise _Refused(f"*{event.anchor} is inside the collection it names", event.start_mark)
            self.aliases.append((node, event))
            return node  # type: ignore[no-any-return]
        if not self.check_event(SequenceStartEvent, MappingStartEvent):
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self.depth -= 1

    def construct_text(self, node: ScalarNode) -> str:
        return self.construct_scalar(node)  # type: ignore[no-any-return]

    def construct_bounded_int(self, node: ScalarNode) -> int | str:
        digits = node.value.replace("_", "")
        # Long digit strings are refused by int() (or cost it quadratic time); out of 64-bit
        # range, MessagePack could not pack them. Either way the field's validation says why.
        if len(digits) > 70:
            return node.value  # type: ignore[no-any-return]
        value = super().construct_yaml_int(node)
        return value if -(2**63) <= value < 2**64 else node.value


ManifestLoader.add_constructor(_TAG + "timestamp", ManifestLoader.construct_text)
ManifestLoader.add_constructor(_TAG + "int", ManifestLoader.construct_bounded_int)
# `<<` and `=` as values (not keys) are plain text; PyYAML alone would fail on them.
ManifestLoader.add_constructor(_MERGE, ManifestLoader.construct_text)
ManifestLoader.add_constructor(_VALUE, ManifestLoader.construct_text)


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _LibyamlManifestLoader(ManifestLoader):
        """ManifestLoader reading its events from libyaml: about ten times faster, same checks
        (composing, counting and constructing stay in ManifestLoader's Python)."""

        def __init__(self, stream: str) -> None:
            self._events = CParser(stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._start_document()

        def check_event(self, *choices: Any) -> bool:
            return self._events.check_event(*choices)  # type: ignore[no-any-return]

        def peek_event(self) -> Any:
            return self._events.peek_event()

        def get_event(self) -> Any:
            return self._events.get_event()

        def dispose(self) -> None:
            self._events.dispose()

    LOADER: type[ManifestLoader] = _LibyamlManifestLoader
else:  # pragma: no cover - libyaml ships in PyYAML's wheels
    LOADER = ManifestLoader


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


_KEY_KINDS = {
    _TAG + "int": "an integer",
    _TAG + "float": "a number",
    _TAG + "bool": "a boolean",
    _TAG + "timestamp": "a timestamp",
}


def _key_shown(key: Node) -> str:
    """How a key that is not a string reads in a message: ``1, an integer; quote it``."""
    if isinstance(key, MappingNode):
        return "a mapping"
    if isinstance(key, SequenceNode):
        return "a list"
    if key.tag == _TAG + "null":
        return "null"
    text = str(key.value)
    text = text if len(text) <= 40 else text[:37] + "..."
    kind = _KEY_KINDS.get(key.tag)
    return f"{text}, {kind}; quote it to make it text" if kind else text


class _Shape:
    """One walk over a composed document: expanded size and depth of every node (each node
    once, however many aliases name it, so a bomb costs its written size), key and tag
    checks on every node."""

    def __init__(self) -> None:
        self.known: dict[int, tuple[int, int]] = {}
        """id(node) -> (nodes once aliases are expanded, collection levels at and below it)."""
        self.problems: list[tuple[str, Mark | None]] = []

    def visit(self, node: Node, depth: int) -> tuple[int, int]:
        known = self.known.get(id(node))
        if known is not None:
            if depth + known[1] - 1 > MAX_DEPTH:
                raise _Refused(
                    f"nested deeper than {MAX_DEPTH} levels once aliases are expanded", node.start_mark
                )
            return known
        if node.tag not in _JSON_TAGS and node.tag not in (_MERGE, _VALUE):
            self.problems.append(
                (
                    f"the tag {_short_tag(node.tag)} is not supported: manifests hold only mappings,"
                    " lists, strings, numbers, booleans and null",
                    node.start_mark,
                )
            )
        if isinstance(node, ScalarNode):
            shape = (1, 0)
        else:
            if depth > MAX_DEPTH:
                raise _Refused(
                    f"nested deeper than {MAX_DEPTH} levels once aliases are expanded", node.start_mark
                )
            if isinstance(node, MappingNode):
                self._check_keys(node)
                children = [child for pair in node.value for child in pair]
            else:
                children = node.value
            size, height = 1, 0
            for child in children:
                child_size, child_height = self.visit(child, depth + 1)
                size += child_size
                height = max(height, child_height)
            shape = (size, height + 1)
        self.known[id(node)] = shape
        return shape

    def _check_keys(self, node: MappingNode) -> None:
        seen: dict[str, Mark] = {}
        for key, _ in node.value:
            if key.tag == _MERGE:  # `<<: *defaults`; merged keys may be overridden, as in Kubernetes
                continue
            if not isinstance(key, ScalarNode) or key.tag not in (_STR, _VALUE):
                self.problems.append(
                    (f"mapping keys must be strings (got {_key_shown(key)})", key.start_mark)
                )
                continue
            name = key.value if key.tag == _STR else "="
            first = seen.get(name)
            if first is not None:
                self.problems.append(
                    (f"duplicate key {name!r} (first at line {first.line + 1})", key.start_mark)
                )
            else:
                seen[name] = key.start_mark

    def count_aliases(self, aliases: list[tuple[Node, AliasEvent]], budget: ReadBudget) -> None:
        """Refuse excessive aliasing, naming the alias that crosses the line."""
        written = len(self.known)
        added = 0
        for node, event in aliases:
            added += self.known[id(node)][0]
            if added > budget.aliased_left:
                spent = MAX_ALIASED_NODES - budget.aliased_left
                before = f"; earlier documents used {spent:,}" if spent else ""
                raise _Refused(
                    f"excessive aliasing: aliases up to *{event.anchor} here add {added:,} nodes, more"
                    f" than the {MAX_ALIASED_NODES:,} allowed per request{before}",
                    event.start_mark,
                )
            if added > MAX_ALIAS_RATIO * written:
                raise _Refused(
                    f"excessive aliasing: aliases up to *{event.anchor} here add {added:,} nodes, more"
                    f" than {MAX_ALIAS_RATIO} times the {written:,} the document is written with",
                    event.start_mark,
                )
        budget.aliased_left -= added


def _where(source: str, number: int, mark: Mark | None) -> str:
    if mark is None:
        return f"{source}, document {number}"
    return f"{source}, document {number}, line {mark.line + 1}, column {mark.column + 1}"


def _yaml_problem(err: yaml.YAMLError, source: str, text: str, document: int | None) -> str:
    """``app.yaml: invalid YAML at line 2, column 5 (document 1): ...``"""
    of = f" (document {document})" if document is not None else ""
    if isinstance(err, yaml.reader.ReaderError):
        line = text.count("\n", 0, err.position) + 1
        column = err.position - (text.rfind("\n", 0, err.position) + 1) + 1
        character = err.character if isinstance(err.character, str) else chr(err.character)
        return (
            f"{source}: invalid YAML at line {line}, column {column}{of}: the character"
            f" {ord(character):#06x} is not allowed in YAML"
        )
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(err, "problem", None) or str(err)
    return f"{source}: invalid YAML{where}{of}: {problem}"


def _too_large(source: str, size: int | None, budget: ReadBudget) -> str:
    amount = f"{size:,} bytes" if size is not None else f"more than {budget.bytes_left:,} bytes"
    read = MAX_REQUEST_BYTES - budget.bytes_left
    before = f", and {read:,} bytes were read before it" if read else ""
    return f"{source}: too large ({amount}): Shoal reads at most 3 MiB of manifests per request{before}"


def _text_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def parse_documents(text: str, source: str, *, budget: ReadBudget | None = None) -> list[ManifestDocument]:
    """Every non-empty YAML document of ``text``; broken or hostile YAML names the file,
    document, line and column. ``kind: List`` documents expand into their items."""
    budget = budget if budget is not None else ReadBudget()
    size = _text_size(text)
    if size > budget.bytes_left:
        raise InvalidManifest([_too_large(source, size, budget)])
    budget.bytes_left -= size
    return _load(text, source, budget)


def _load(text: str, source: str, budget: ReadBudget) -> list[ManifestDocument]:
    documents: list[ManifestDocument] = []
    problems: list[str] = []
    loader: ManifestLoader | None = None
    number = 0
    inside: int | None = None  # the document being read, for syntax errors
    try:
        loader = LOADER(text)  # the pure-Python reader checks every character here
        while loader.check_node():
            number += 1
            inside = number
            node = loader.get_node()
            shape = _Shape()
            shape.visit(node, 1)
            shape.count_aliases(loader.aliases, budget)
            problems += [f"{_where(source, number, mark)}: {problem}" for problem, mark in shape.problems]
            if shape.problems:
                continue
            body = loader.construct_document(node)
            if body is not None:
                documents += _expand(body, source, number, problems)
            inside = None
    except _Refused as refused:
        problems.append(f"{_where(source, number, refused.mark)}: {refused.problem}")
    except yaml.YAMLError as err:
        problems.append(_yaml_problem(err, source, text, inside))
    except UnicodeError as err:  # a lone surrogate in a str built by code; files decode strictly
        problems.append(f"{source}: not valid Unicode text: {err}")
    finally:
        if loader is not None:
            loader.dispose()
    if problems:
        if len(problems) > MAX_PROBLEMS:
            problems = [*problems[:MAX_PROBLEMS], f"{source}: {len(problems) - MAX_PROBLEMS} more problems"]
        raise InvalidManifest(problems)
    return documents


def item_source(source: str, item: int) -> str:
    """The source of the ``item``-th object of a ``kind: List`` document.

    Validation names a document ``{source}, document {index}``; with this source that
    reads ``app.yaml (List item 3), document 1``.
    """
    return f"{source} (List item {item})"


def _expand(body: Any, source: str, number: int, problems: list[str]) -> list[ManifestDocument]:
    """The document, or the items of a ``kind: List`` document, each its own document."""
    if not isinstance(body, dict) or body.get("kind") != "List":
        return [ManifestDocument(source=source, index=number, body=body)]
    where = f"{source}, document {number} (List)"
    if body.get("apiVersion") != "v1":
        problems.append(f"{where}: apiVersion: a List needs 'v1' (got {body.get('apiVersion')!r:.60})")
        return []
    items = body.get("items")
    if items is None:
        return []
    if not isinstance(items, list):
        problems.append(f"{where}: items: must be a list (got {type(items).__name__})")
        return []
    documents = []
    for item, item_body in enumerate(items, start=1):
        if isinstance(item_body, dict) and item_body.get("kind") == "List":
            problems.append(
                f"{item_source(source, item)}, document {number}: a List inside a List is not supported"
            )
            continue
        documents.append(ManifestDocument(source=item_source(source, item), index=number, body=item_body))
    return documents


def _decode(data: bytes, source: str) -> str:
    """UTF-8 text, with or without a byte order mark, or UTF-16 with one (PowerShell's
    default), as kubectl reads; anything else is refused as not text."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not data.startswith(
        codecs.BOM_UTF32_LE
    ):
        encoding = "utf-16"
    else:
        if b"\x00" in data:
            raise _not_text(source, data, data.index(b"\x00"), "a NUL byte")
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise _not_text(source, data, err.start, f"the byte {data[err.start]:#04x}") from None


def _not_text(source: str, data: bytes, offset: int, what: str) -> InvalidManifest:
    line = data.count(b"\n", 0, offset) + 1
    return InvalidManifest(
        [
            f"{source}: not a text file: {what} at line {line} (offset {offset});"
            " manifests are UTF-8 YAML or JSON"
        ]
    )


def _read(stream: BinaryIO, source: str, budget: ReadBudget) -> str:
    # One byte past the allowance tells "too large" from "just fits", whatever the stream.
    data = stream.read(budget.bytes_left + 1)
    if len(data) > budget.bytes_left:
        raise InvalidManifest([_too_large(source, None, budget)])
    budget.bytes_left -= len(data)
    return _decode(data, source)


def manifest_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
        if not files:
            raise InvalidManifest([f"{path}: the folder holds no .yaml, .yml or .json files"])
        return files
    if not path.exists():
        raise InvalidManifest([f"{path}: no such file or folder"])
    return [path]


def read_manifests(paths: list[Path]) -> list[ManifestDocument]:
    """The documents of files, folders and ``-`` (standard input), at most 3 MiB in all."""
    budget = ReadBudget()
    documents: list[ManifestDocument] = []
    read_stdin = False
    for path in paths:
        if path == STDIN:
            if read_stdin:
                raise InvalidManifest([f"{STDIN_SOURCE}: '-' is given twice; standard input is read once"])
            read_stdin = True
            stream = getattr(sys.stdin, "buffer", None)
            if stream is None:
                raise InvalidManifest([f"{STDIN_SOURCE}: there is no standard input to read"])
            documents += _load(_read(stream, STDIN_SOURCE, budget), STDIN_SOURCE, budget)
            continue
        for file in manifest_files(path):
            source = str(file)
            try:
                size = file.stat().st_size
                if size > budget.bytes_left:  # refused unread, however large
                    raise InvalidManifest([_too_large(source, size, budget)])
                with file.open("rb") as stream:
                    text = _read(stream, source, budget)
            except OSError as err:
                raise InvalidManifest([f"{file}: cannot read: {err.strerror or err}"]) from None
            documents += _load(text, source, budget)
    if not documents:
        raise InvalidManifest([f"{', '.join(map(str, paths))}: no manifests found"])
    return documents
