"""``shoal explain``: the fields of a kind as Shoal reads them, from the models themselves.

A path such as ``deployment.spec.template`` is walked through the model's fields by their
manifest (camelCase) names; each field is shown with its type as kubectl names types
(``<string>``, ``<integer>``, ``<[]Object>``, ``<map[string]string>``) and the docstring the
model gives it. Only what Shoal's models hold is shown: a field not listed is one Shoal
warns about and ignores.
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import textwrap
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shoal.errors import InvalidManifest

HIDDEN = {"schema"}
"""Fields of Shoal's records that are not a manifest's (its payload version)."""


@dataclass(frozen=True)
class Field:
    name: str
    type_name: str
    doc: str


@dataclass(frozen=True)
class Explanation:
    path: str
    type_name: str
    doc: str
    fields: list[Field]


def _inner(annotation: Any) -> Any:
    """The annotation without Optional, Annotated and Literal wrapping."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
            if len(args) != 1:
                return annotation
        else:
            return annotation


def type_name(annotation: Any) -> str:
    annotation = _inner(annotation)
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(annotation)
        return "[]" + (type_name(args[0]) if args else "Object")
    if origin is dict:
        args = typing.get_args(annotation)
        return f"map[string]{type_name(args[1]) if len(args) == 2 else 'Object'}"
    if origin is typing.Literal:
        return type_name(type(typing.get_args(annotation)[0]))
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return "Object"
        if issubclass(annotation, bool):
            return "boolean"
        if issubclass(annotation, int):
            return "integer"
        if issubclass(annotation, float):
            return "number"
        if issubclass(annotation, (str, bytes)):
            return "string"
    return "string" if origin in (typing.Union, types.UnionType) else "Object"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, itself or as the items of a list or the values of a map."""
    annotation = _inner(annotation)
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(annotation)
        return _model_of(args[0]) if args else None
    if origin is dict:
        args = typing.get_args(annotation)
        return _model_of(args[1]) if len(args) == 2 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


@functools.cache
def _docs(model: type[BaseModel]) -> dict[str, str]:
    """Attribute docstrings (the string right after a field) of a model and its bases."""
    found: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for before, after in itertools.pairwise(body):
            if (
                isinstance(before, ast.AnnAssign)
                and isinstance(before.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                found[before.target.id] = inspect.cleandoc(after.value.value)
    return found


def _fields(model: type[BaseModel]) -> dict[str, tuple[str, Any]]:
    """Manifest name -> (attribute name, annotation)."""
    return {
        (info.alias or name): (name, info.annotation)
        for name, info in model.model_fields.items()
        if (info.alias or name) not in HIDDEN
    }


def explain(model: type[BaseModel], kind: str, path: list[str]) -> Explanation:
    """What ``kind.<path>`` is, and the fields under it."""
    current: type[BaseModel] | None = model
    annotation: Any = model
    doc = inspect.cleandoc(model.__doc__ or "") if model.__doc__ != BaseModel.__doc__ else ""
    walked = [kind.lower()]
    for part in path:
        fields = _fields(current) if current is not None else {}
        if part not in fields:
            known = ", ".join(fields) or "none: it is a value"
            raise InvalidManifest(
                [f"field {part!r} does not exist in {'.'.join(walked)} (its fields: {known})"]
            )
        attribute, annotation = fields[part]
        doc = _docs(current).get(attribute, "") if current is not None else ""
        current = _model_of(annotation)
        walked.append(part)
    listed = []
    if current is not None:
        docs = _docs(current)
        for name, (attribute, field_annotation) in _fields(current).items():
            listed.append(Field(name, type_name(field_annotation), docs.get(attribute, "")))
    return Explanation(".".join(walked), type_name(annotation), doc, listed)
