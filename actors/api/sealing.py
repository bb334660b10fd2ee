"""Secrets at rest: sealed with AES-256-GCM under a key only the API actors hold.

The keyring is a YAML file (mode 0600) listing keys, newest first::

    keys:
    - id: k-20261201-1a2b
      secret: <32 random bytes, base64>

The first key seals every Secret written; any listed key unseals. To rotate: put a new key
first (``shoal api`` does it with ``--rotate-secret-key``), restart the API actors, which
reseal every Secret under it as they start, then drop the old key from the file. Each
sealed value is bound to its Secret's namespace and name (associated data), so a sealed
value copied under another name does not unseal.
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import ormsgpack
import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shoal.errors import ShoalError
from shoal.models.core import SealedSecret, Secret

KEY_BYTES = 32
NONCE_BYTES = 12


class KeyringError(ShoalError):
    code = "keyring"


@dataclass(frozen=True)
class Keyring:
    keys: tuple[tuple[str, bytes], ...]
    """(id, key), the sealing key first."""

    @property
    def active(self) -> str:
        return self.keys[0][0]

    def key(self, key_id: str) -> bytes | None:
        return next((key for kid, key in self.keys if kid == key_id), None)


def new_key_entry() -> dict[str, str]:
    key_id = f"k-{time.strftime('%Y%m%d')}-{secrets.token_hex(2)}"
    return {"id": key_id, "secret": base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}


def _write(path: Path, entries: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("# Shoal's keys for Secrets at rest. The first seals; every key listed unseals.\n")
        yaml.safe_dump({"keys": entries}, out, sort_keys=False)
    tmp.replace(path)


def load_keyring(path: Path, *, create: bool = True, rotate: bool = False) -> Keyring:
    """The keyring in ``path``; a new one if the file is missing and ``create``; with a new
    sealing key put first if ``rotate``."""
    if not path.exists():
        if not create:
            raise KeyringError(f"{path}: no such keyring (the API actor creates it on first start)")
        _write(path, [new_key_entry()])
        rotate = False
    if path.stat().st_mode & 0o077:
        raise KeyringError(f"{path}: the keyring must be readable by its owner only (chmod 600 {path})")
    try:
        data = yaml.safe_load(path.read_text())
        entries = [dict(entry) for entry in data["keys"]]
        keys = tuple((str(e["id"]), base64.b64decode(str(e["secret"]), validate=True)) for e in entries)
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as err:
        raise KeyringError(f"{path}: not a Shoal keyring ({type(err).__name__}: {err})") from None
    if not keys or any(len(key) != KEY_BYTES for _, key in keys):
        raise KeyringError(f"{path}: every key must be {KEY_BYTES} bytes, base64")
    if rotate:
        entries.insert(0, new_key_entry())
        _write(path, entries)
        return load_keyring(path, create=False)
    return Keyring(keys)


def _context(namespace: str, name: str) -> bytes:
    return f"shoal/secret/{namespace}/{name}".encode()


def seal(secret: Secret, keyring: Keyring) -> SealedSecret:
    meta = secret.metadata
    nonce = os.urandom(NONCE_BYTES)
    key = keyring.key(keyring.active)
    assert key is not None
    plain = ormsgpack.packb(secret.data)
    sealed = AESGCM(key).encrypt(nonce, plain, _context(meta.namespace, meta.name))
    return SealedSecret(
        metadata=meta,
        type=secret.type,
        immutable=secret.immutable,
        sizes={k: len(v) for k, v in sorted(secret.data.items())},
        key_id=keyring.active,
        nonce=nonce,
        sealed=sealed,
    )


def unseal(sealed: SealedSecret, keyring: Keyring) -> Secret:
    meta = sealed.metadata
    key = keyring.key(sealed.key_id)
    if key is None:
        raise KeyringError(
            f"secret {meta.namespace}/{meta.name} is sealed with key {sealed.key_id!r},"
            " which this API's keyring does not hold"
        )
    try:
        plain = AESGCM(key).decrypt(sealed.nonce, sealed.sealed, _context(meta.namespace, meta.name))
    except InvalidTag:
        raise KeyringError(f"secret {meta.namespace}/{meta.name} does not unseal: it was altered") from None
    data = ormsgpack.unpackb(plain)
    return Secret.model_construct(
        metadata=meta, type=sealed.type, data=data, string_data={}, immutable=sealed.immutable
    )
