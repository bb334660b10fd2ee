"""What a client connects to NATS with: its credentials and the CA it trusts.

Light on purpose (the command line imports it before it knows whether it will connect):
the libraries that read credentials and make TLS contexts load only when a connection is made.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoal.errors import PermanentError


@dataclass(frozen=True)
class Access:
    """How a client proves who it is to NATS, and which servers it trusts."""

    credentials: Path | None = None
    """A Shoal credentials file (role, node name, nkey seed); None: connect as no one."""
    ca: Path | None = None
    """The CA the servers' TLS certificates must be signed by; None: plaintext."""

    def options(self) -> dict[str, Any]:
        """nats-py's connect options for this access."""
        options: dict[str, Any] = {}
        if self.credentials is not None:
            from shoal.security.credentials import read_credentials
            from shoal.security.permissions import APP, inbox_prefix

            credentials = read_credentials(self.credentials)
            options["nkeys_seed_str"] = credentials.seed
            if credentials.role != APP:  # an app keeps NATS' own inboxes, as any client of its own
                options["inbox_prefix"] = inbox_prefix(credentials.identity)
        if self.ca is not None:
            if not self.ca.is_file():
                raise PermanentError(f"the TLS CA file {self.ca} does not exist")
            options["tls"] = client_context(self.ca)
        return options


def client_context(ca: Path) -> ssl.SSLContext:
    """What a client trusts: the cluster's CA only (not the system's), with host names checked."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
