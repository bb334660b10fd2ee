"""Where the cluster is: the context file ``shoal up`` writes, like a kubeconfig.

Precedence: ``--server``, then ``SHOAL_SERVER``, then the context file
(``$SHOAL_CONTEXT``, else ``$XDG_CONFIG_HOME/shoal/context.yaml``), then the default URL.
The credentials and the CA to trust come the same way: ``--credentials`` / ``--tls-ca``, then
``SHOAL_CREDENTIALS`` / ``SHOAL_TLS_CA``, then the context's ``credentials`` and ``ca``.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from shoal.security.access import Access

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


def write_context(server: str, data_dir: Path, access: Access | None = None) -> Path:
    path = context_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    body = {"server": server, "dataDir": str(data_dir)}
    if access is not None and access.credentials is not None:
        body["credentials"] = str(access.credentials)
    if access is not None and access.ca is not None:
        body["ca"] = str(access.ca)
    tmp.write_text(yaml.safe_dump(body, sort_keys=False))
    tmp.replace(path)
    return path


def resolve_access(credentials: Path | None = None, ca: Path | None = None) -> Access:
    """The credentials and CA a command connects with (see the module's precedence)."""
    context = read_context()

    def pick(explicit: Path | None, env: str, key: str) -> Path | None:
        if explicit is not None:
            return explicit
        value = os.environ.get(env) or context.get(key)
        return Path(value) if value else None

    return Access(
        credentials=pick(credentials, "SHOAL_CREDENTIALS", "credentials"),
        ca=pick(ca, "SHOAL_TLS_CA", "ca"),
    )


def resolve_server(explicit: str | None) -> str:
    if explicit:
        return explicit
    env = os.environ.get("SHOAL_SERVER")
    if env:
        return env
    return read_context().get("server", DEFAULT_SERVER)
