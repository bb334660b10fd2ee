"""Where the cluster is: the context file ``shoal up`` writes, like a kubeconfig.

Precedence: ``--server``, then ``SHOAL_SERVER``, then the context file
(``$SHOAL_CONTEXT``, else ``$XDG_CONFIG_HOME/shoal/context.yaml``), then the default URL.
The file keeps one context per cluster (each ``shoal up`` adds or refreshes its own) and
which one is current; ``shoal config use-context`` switches, ``$SHOAL_CONTEXT_NAME`` picks one
for a single command.
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


CONTEXT_ENV = "SHOAL_CONTEXT_NAME"
"""Environment variable naming the context a command uses, instead of the current one."""


def read_contexts() -> tuple[str, dict[str, dict[str, str]]]:
    """(current context's name, every context by name) from the context file. A file of one
    context (``server:`` at its top, as older versions wrote) is that context, named local."""
    try:
        data = yaml.safe_load(context_path().read_text())
    except (OSError, yaml.YAMLError):
        return "", {}
    if not isinstance(data, dict):
        return "", {}
    if "server" in data:
        return "local", {"local": {str(k): str(v) for k, v in data.items()}}
    contexts = data.get("contexts")
    if not isinstance(contexts, dict):
        return "", {}
    found = {
        str(name): {str(k): str(v) for k, v in body.items()}
        for name, body in contexts.items()
        if isinstance(body, dict)
    }
    return str(data.get("current") or ""), found


def read_context() -> dict[str, str]:
    """The context commands use: ``$SHOAL_CONTEXT_NAME``'s, else the current one."""
    current, contexts = read_contexts()
    return contexts.get(os.environ.get(CONTEXT_ENV) or current, {})


def write_contexts(current: str, contexts: dict[str, dict[str, str]]) -> Path:
    path = context_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump({"current": current, "contexts": contexts}, sort_keys=False))
    tmp.replace(path)  # whole or not at all: a command reading it meanwhile sees one or the other
    return path


def context_name_for(data_dir: Path, contexts: dict[str, dict[str, str]]) -> str:
    """The name ``shoal up`` gives a cluster's context: ``local`` for the default data dir,
    else the data dir's name; the name of the context already kept for this data dir if any,
    so a cluster started again keeps its name, and never another cluster's."""
    for name, body in contexts.items():
        if body.get("dataDir") == str(data_dir):
            return name
    base = "local" if data_dir == default_data_dir() else data_dir.name or "local"
    name, number = base, 1
    while name in contexts:
        number += 1
        name = f"{base}-{number}"
    return name


def write_context(server: str, data_dir: Path, access: Access | None = None, name: str = "") -> Path:
    """Keep a cluster's context (by ``name``, else ``context_name_for``) and make it current;
    the other clusters' contexts stay."""
    _, contexts = read_contexts()
    name = name or context_name_for(data_dir, contexts)
    body = {"server": server, "dataDir": str(data_dir)}
    if access is not None and access.credentials is not None:
        body["credentials"] = str(access.credentials)
    if access is not None and access.ca is not None:
        body["ca"] = str(access.ca)
    contexts[name] = body
    return write_contexts(name, contexts)


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
