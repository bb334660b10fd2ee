"""One identity's credentials file: its role, a node's name and the nkey seed that proves it.

Apart from the authority that issues them: every client reads its credentials before it
connects, and must not pay for the libraries that make certificates to do so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nkeys
import yaml

from shoal.errors import PermanentError
from shoal.security.permissions import identity_of


@dataclass(frozen=True)
class Credentials:
    """Who a client is: its role, a node's name, and the nkey seed that proves it."""

    role: str
    name: str
    seed: str

    @property
    def identity(self) -> str:
        return identity_of(self.role, self.name)

    @property
    def public_key(self) -> str:
        return nkeys.from_seed(bytearray(self.seed.encode())).public_key.decode()

    def dump(self) -> bytes:
        body = {"identity": self.identity, "role": self.role, "name": self.name, "seed": self.seed}
        return yaml.safe_dump(body, sort_keys=False).encode()


class CredentialsError(PermanentError):
    code = "bad-credentials"


def read_credentials(path: Path) -> Credentials:
    """The credentials in ``path``, or one line saying what is wrong with the file."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise CredentialsError(f"cannot read the credentials file {path}: {err.strerror}") from None
    except yaml.YAMLError:
        raise CredentialsError(f"{path} is not a Shoal credentials file (not YAML)") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("role", "seed")):
        raise CredentialsError(f"{path} is not a Shoal credentials file (role and seed are needed)")
    credentials = Credentials(str(data["role"]), str(data.get("name") or ""), str(data["seed"]))
    try:
        credentials.public_key  # noqa: B018 (a seed that does not decode is a bad file)
    except Exception:
        raise CredentialsError(f"{path}: the seed is not a NATS user nkey seed") from None
    return credentials
