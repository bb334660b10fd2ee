"""The package as installed: every sub-package listed, and the layers kept apart."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_PACKAGED = {"tests", "bench", "build", ".venv"}

# Which top-level parts of shoal each part may import. cli -> actors -> {bus, runtime};
# bus and runtime know nothing of each other; models and manifests stand alone, and policy
# (the pod security rules over models) beside them; keys (how objects are named in NATS) and
# kinds (the registry of kinds, over the models) are shared.
ALLOWED = {
    "models": {"models"},
    "policy": {"policy", "models"},
    "keys": set(),
    "label_selectors": {"errors"},  # how -l and apply --prune pick objects by their labels
    "kinds": {"models", "bus"},  # a kind names its bucket (imported lazily)
    "manifests": {"models", "errors", "manifests", "kinds", "policy"},
    "bus": {"bus", "models", "errors", "processes", "retry", "security"},
    # Identities, permissions and TLS: what a connection presents, what the server allows.
    "security": {"security", "bus", "models", "errors"},
    "runtime": {"runtime", "models", "errors", "processes", "retry"},
    "actors": {
        "actors",
        "bus",
        "runtime",
        "models",
        "manifests",
        "errors",
        "retry",
        "keys",
        "kinds",
        "policy",
        "security",
        "label_selectors",
    },
    "client": {"bus", "models", "errors", "keys", "kinds", "security"},  # reads any kind's object
    # The web view follows the bus and renders with manifests; only the command line starts it.
    # Its actions send the client's requests, checked by the policies the command line uses.
    "dashboard": {
        "dashboard",
        "bus",
        "client",
        "models",
        "manifests",
        "errors",
        "keys",
        "policy",
        "security",
    },
    "cli": {
        "cli",
        "retry",  # which failures are worth asking again (rollout status, one-line timeouts)
        "client",
        "dashboard",
        "actors",
        "bus",
        "runtime",
        "models",
        "manifests",
        "errors",
        "processes",
        "security",
        "__init__",
        "keys",
        "kinds",
        "label_selectors",
        "policy",
    },
}


def test_every_package_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"shoal"}
    for init in ROOT.rglob("__init__.py"):
        relative = init.parent.relative_to(ROOT)
        if relative.parts and relative.parts[0] in NOT_PACKAGED:
            continue
        if relative.parts:
            found.add(".".join(("shoal", *relative.parts)))
    assert found == listed


def _shoal_imports(path: Path) -> set[str]:
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("shoal."):
            parts.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "shoal":
            parts.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            parts.update(a.name.split(".")[1] for a in node.names if a.name.startswith("shoal."))
    return parts


def test_layers_only_import_downwards() -> None:
    wrong = []
    for part, allowed in ALLOWED.items():
        files = [ROOT / f"{part}.py"] if (ROOT / f"{part}.py").exists() else list((ROOT / part).rglob("*.py"))
        for file in files:
            extra = _shoal_imports(file) - allowed
            if extra:
                wrong.append(f"{file.relative_to(ROOT)} imports {sorted(extra)}")
    assert wrong == []
