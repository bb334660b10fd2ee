"""Where the cluster is: the context file ``shoal up`` writes, like a kubeconfig.

Precedence: ``--server``, then ``SHOAL_SERVER``, then the context file
(``$SHOAL_CONTEXT``, else ``$XDG_CONFIG_HOME/shoal/context.yaml``), then the default URL.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

DEFAULT_SERVER = "nats://127.0.0.1:4222"


def context_path() -> Path:
    explicit = os.environ.get("SHOAL_CONTEXT")
    if explicit:
        return Path(explicit)
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "shoal" / "context.yaml"


def default_data_dir() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "shoal"


def read_context() -> dict[str, str]:
    path = context_path()
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def write_context(server: str, data_dir: Path) -> Path:
    path = context_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump({"server": server, "dataDir": str(data_dir)}, sort_keys=False))
    tmp.replace(path)
    return path


def resolve_server(explicit: str | None) -> str:
    if explicit:
        return explicit
    env = os.environ.get("SHOAL_SERVER")
    if env:
        return env
    return read_context().get("server", DEFAULT_SERVER)
