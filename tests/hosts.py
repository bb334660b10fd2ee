"""Test hosts on this machine: network namespaces, each joined by a veth pair to a bridge of the
test's own, so a test can cut one host off the network and heal it.

The bridge is the "switch": it carries the address nats-server listens on (``gateway``) in the
root namespace. A host is a namespace with one veth end inside (``address``) and the other on
the bridge; ``cut`` takes the bridge-side end down (the host loses every packet, as if its cable
were pulled), ``heal`` brings it back. Every name and address is the test's own (a random
``10.231.X.0/24``) and goes in ``remove``, also when the test fails.
"""

from __future__ import annotations

import contextlib
import random
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _free_subnet() -> int:
    """A third octet no address of this machine uses in 10.231.0.0/16."""
    used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True, check=False).stdout
    for _ in range(100):
        octet = random.randint(1, 254)
        if f"10.231.{octet}." not in used:
            return octet
    raise AssertionError("no free 10.231.X.0/24 subnet")


@dataclass
class Host:
    """One host: a network namespace with an address on the test network."""

    netns: str
    address: str
    outer: str
    """The veth end on the bridge: down, the host is cut off."""

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside the host."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def cut(self) -> None:
        ip("link", "set", self.outer, "down")

    def heal(self) -> None:
        ip("link", "set", self.outer, "up")


@dataclass
class Network:
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    octet: int = field(default_factory=_free_subnet)
    hosts: list[Host] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"shbr{self.tag}"

    @property
    def gateway(self) -> str:
        """The root namespace's address on the test network (where nats-server listens)."""
        return f"10.231.{self.octet}.1"

    def create(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def add_host(self) -> Host:
        index = len(self.hosts) + 1
        host = Host(
            netns=f"shoal-{self.tag}-{index}",
            address=f"10.231.{self.octet}.{index + 1}",
            outer=f"shv{self.tag}{index}",
        )
        inner = f"shi{self.tag}{index}"
        self.hosts.append(host)
        ip("netns", "add", host.netns)
        ip("link", "add", host.outer, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", host.netns)
        ip("link", "set", host.outer, "master", self.bridge)
        ip("link", "set", host.outer, "up")
        ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", inner)
        ip("-n", host.netns, "link", "set", inner, "up")
        ip("-n", host.netns, "link", "set", "lo", "up")
        ip("-n", host.netns, "route", "add", "default", "via", self.gateway)
        return host

    def remove(self) -> None:
        for host in self.hosts:
            with contextlib.suppress(AssertionError):
                ip("link", "del", host.outer)  # its peer inside goes with it
            with contextlib.suppress(AssertionError):
                ip("netns", "del", host.netns)
        with contextlib.suppress(AssertionError):
            ip("link", "del", self.bridge)


@contextlib.contextmanager
def network_of_hosts() -> Iterator[Network]:
    """A test network for the block, removed after it (with every host), failed or not."""
    network = Network()
    try:
        network.create()
        yield network
    finally:
        network.remove()
