"""Reading manifest files: YAML documents out of files and folders, with where each came from."""

from __future__ import annotations

from pathlib import Path

import yaml

from shoal.errors import InvalidManifest
from shoal.models.api import ManifestDocument

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def manifest_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
        if not files:
            raise InvalidManifest([f"{path}: the folder holds no .yaml, .yml or .json files"])
        return files
    if not path.exists():
        raise InvalidManifest([f"{path}: no such file or folder"])
    return [path]


def parse_documents(text: str, source: str) -> list[ManifestDocument]:
    """Every non-empty YAML document of ``text``; broken YAML names the file, line and column."""
    try:
        bodies = list(yaml.safe_load_all(text))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise InvalidManifest([f"{source}: invalid YAML{where}: {problem}"]) from None
    documents = []
    for index, body in enumerate(bodies, start=1):
        if body is None:
            continue
        documents.append(ManifestDocument(source=source, index=index, body=body))
    return documents


def read_manifests(paths: list[Path]) -> list[ManifestDocument]:
    documents: list[ManifestDocument] = []
    for path in paths:
        for file in manifest_files(path):
            try:
                text = file.read_text()
            except (OSError, UnicodeDecodeError) as err:
                raise InvalidManifest([f"{file}: cannot read: {err}"]) from None
            documents.extend(parse_documents(text, str(file)))
    if not documents:
        raise InvalidManifest([f"{', '.join(map(str, paths))}: no manifests found"])
    return documents
