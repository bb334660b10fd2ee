"""A cluster's identities and certificates, kept in its data dir, and what nats-server makes of them.

Layout under ``<data dir>/security`` (every secret mode 0600):

- ``ca.pem``, ``ca-key.pem``: the cluster's certificate authority;
- ``servers/<server>.pem`` and ``-key.pem``: each nats-server's certificate;
- ``credentials/<identity>.yaml``: one identity's credentials (its role, node name and nkey
  seed), the file a role's ``--credentials`` or the context file points at;
- ``authorization.conf``: the ``authorization`` block every nats-server of the cluster
  includes: each identity's public nkey with its permissions (``security.permissions``).

Issuing an identity adds its public key and rewrites ``authorization.conf``; running
nats-servers of the data dir are told to reload it (SIGHUP), so a new node can join a running
cluster. Keys are made by the ``nkeys`` library (Ed25519, from PyNaCl); nothing here is crypto
of Shoal's own.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import nkeys

from shoal.models.base import check_dns_label
from shoal.security import permissions
from shoal.security.credentials import Credentials, CredentialsError, read_credentials
from shoal.security.files import write_private
from shoal.security.permissions import Grant, identity_of
from shoal.security.tls import make_ca, make_server_cert


def new_seed() -> str:
    """A fresh user nkey seed (``SU...``) from the system's random source."""
    return nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode()


class Authority:
    """The security folder of one cluster's data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "security"

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca-key.pem"

    @property
    def authorization(self) -> Path:
        return self.root / "authorization.conf"

    def credentials_path(self, role: str, name: str = "") -> Path:
        return self.root / "credentials" / f"{identity_of(role, name)}.yaml"

    def make_ca(self) -> None:
        """The cluster's CA, unless it has one."""
        make_ca(self.ca, self.ca_key)

    def server_paths(self, server: str) -> tuple[Path, Path]:
        """Where one nats-server's certificate and key are kept."""
        return self.root / "servers" / f"{server}.pem", self.root / "servers" / f"{server}-key.pem"

    def server_cert(self, server: str, hosts: list[str]) -> tuple[Path, Path]:
        """The certificate and key of one nats-server, made (again) for exactly ``hosts``."""
        self.make_ca()
        cert, key = self.server_paths(server)
        cert.parent.mkdir(parents=True, exist_ok=True)
        make_server_cert(self.ca, self.ca_key, cert, key, server, hosts)
        return cert, key

    def issue(self, role: str, name: str = "") -> Path:
        """The credentials file of ``role`` (a node's ``name``), made if it is not there yet, and
        the authorization rewritten so nats-server knows it."""
        if role not in permissions.ROLES:
            raise CredentialsError(f"unknown role {role!r}: one of {', '.join(permissions.ROLES)}")
        if role == permissions.NODE and not name:
            raise CredentialsError("a node's credentials need the node's name")
        if name:
            try:
                check_dns_label(name)
            except ValueError as err:
                raise CredentialsError(str(err)) from None
        path = self.credentials_path(role, name)
        if not path.exists():
            write_private(path, Credentials(role, name, new_seed()).dump())
        self.write_authorization()
        return path

    def issued(self) -> list[Credentials]:
        folder = self.root / "credentials"
        if not folder.is_dir():
            return []
        return [read_credentials(path) for path in sorted(folder.glob("*.yaml"))]

    def write_authorization(self) -> None:
        """``authorization.conf`` from every issued identity; running servers reload it."""
        users = [render_user(c.public_key, permissions.grant(c.role, c.name)) for c in self.issued()]
        text = "authorization {\n  users: [\n" + ",\n".join(users) + "\n  ]\n}\n"
        if self.authorization.exists() and self.authorization.read_text() == text:
            return
        write_private(self.authorization, text.encode())
        self.reload_servers()

    def reload_servers(self) -> None:
        """SIGHUP each live nats-server whose pid file is in this data dir: it reloads its config."""
        for pid_file in self.root.parent.glob("nats*/nats-server.pid"):
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGHUP)
            except (OSError, ValueError):
                continue  # not running


def render_user(public_key: str, grant: Grant) -> str:
    """One user of nats-server's ``authorization`` block (JSON values: the config format takes them)."""
    lines = [
        "    {",
        f"      nkey: {json.dumps(public_key)}",
        "      permissions: {",
        f"        publish: {{ allow: {json.dumps(list(grant.publish))}{_deny(grant.publish_deny)} }}",
        f"        subscribe: {{ allow: {json.dumps(list(grant.subscribe))}{_deny(grant.subscribe_deny)} }}",
    ]
    if grant.responses:
        lines.append("        allow_responses: true")
    lines += ["      }", "    }"]
    return "\n".join(lines)


def _deny(subjects: tuple[str, ...]) -> str:
    return f", deny: {json.dumps(list(subjects))}" if subjects else ""
