"""Hosts for the multi-host test: one network namespace each, joined by a bridge, where allowed.

Each host is a namespace of its own (`ip netns`) with a veth pair to a bridge in the root
namespace; the bridge has the root's address on the link, so a server that the test runs in
the root (the object store's proxy) is reached there, and nothing on the root's loopback is.
The hosts reach one another across the bridge, with no routing asked of the root. Where
namespaces cannot be made (not root, no `ip`, a sandbox that refuses them) the hosts are plain
processes on loopback, and `Hosts.mode` says so and why: the test runs and asserts the same.
Each run takes a /24 of 10.200.0.0/16 that no interface of the machine holds, under a lock,
so concurrent runs do not share a link; everything made is removed on exit, on failure too.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bandfusion.errors import first_line

NETWORK = ipaddress.IPv4Network("10.200.0.0/16")
_LOCK = Path("/tmp/bandfusion-test-hosts.lock")
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Hosts:
    """Where each host's processes run and at which address the others reach them."""

    mode: str
    """'network namespaces' or 'plain processes (why)': for the test's report."""
    gateway: str
    """The root namespace's address, as the hosts reach it."""
    addresses: dict[str, str]
    namespaces: dict[str, str] = field(default_factory=dict)
    """Host name to namespace name; empty for plain processes."""

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        """`argv` as run on `host` (same process: `ip netns exec` execs it)."""
        namespace = self.namespaces.get(host)
        return ["ip", "netns", "exec", namespace, *argv] if namespace else list(argv)


@contextmanager
def separate_hosts(names: Sequence[str]) -> Iterator[Hosts]:
    """Hosts called `names`, in namespaces where the machine allows it; removed on exit.

    Stop the hosts' processes before leaving: a namespace outlives `ip netns del` while a
    process is in it.
    """
    made: list[list[str]] = []  # the commands that undo what was made, newest last
    try:
        hosts = _namespaces(names, made)
    except (OSError, subprocess.CalledProcessError) as exc:
        _undo(made)
        made.clear()
        reason = _reason(exc)
        hosts = Hosts(f"plain processes ({reason})", LOOPBACK, dict.fromkeys(names, LOOPBACK))
    try:
        yield hosts
    finally:
        _undo(made)


def _namespaces(names: Sequence[str], made: list[list[str]]) -> Hosts:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        raise PermissionError("network namespaces need root and iproute2's ip")
    with _LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held until the bridge holds the subnet
        subnet = _free_subnet()
        tag = subnet.network_address.packed[2]
        bridge = f"bfbr{tag}"
        gateway, *free = (str(address) for address in subnet.hosts())
        _ip(made, ["link", "add", bridge, "type", "bridge"], ["link", "del", bridge])
        _ip(made, ["addr", "add", f"{gateway}/{subnet.prefixlen}", "dev", bridge])
    _ip(made, ["link", "set", bridge, "up"])
    namespaces, addresses = {}, {}
    for index, host in enumerate(names):
        namespace = f"bf{os.getpid()}-{tag}-{host}"
        veth = f"bf{tag}v{index}"
        _ip(made, ["netns", "add", namespace], ["netns", "del", namespace])
        _ip(made, ["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns",
                   namespace], ["link", "del", veth])  # fmt: skip
        _ip(made, ["link", "set", veth, "master", bridge, "up"])
        inside = ["-n", namespace]
        _ip(made, [*inside, "addr", "add", f"{free[index]}/{subnet.prefixlen}", "dev", "eth0"])
        _ip(made, [*inside, "link", "set", "eth0", "up"])
        _ip(made, [*inside, "link", "set", "lo", "up"])
        namespaces[host], addresses[host] = namespace, free[index]
    return Hosts("network namespaces", gateway, addresses, namespaces)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 of NETWORK that no interface of the root namespace has an address in."""
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show"], check=True, capture_output=True,
                           text=True).stdout  # fmt: skip
    taken = {ipaddress.IPv4Interface(word).network.supernet(new_prefix=24)
             for line in shown.splitlines() for word in line.split()[3:4]
             if ipaddress.IPv4Interface(word).ip in NETWORK}  # fmt: skip
    free = [subnet for subnet in NETWORK.subnets(new_prefix=24) if subnet not in taken]
    if not free:
        raise OSError(f"no free /24 left in {NETWORK}")
    return free[0]


def _ip(made: list[list[str]], command: list[str], undo: list[str] | None = None) -> None:
    subprocess.run(["ip", *command], check=True, capture_output=True)
    if undo:
        made.append(undo)


def _reason(exc: OSError | subprocess.CalledProcessError) -> str:
    """One line: what `ip` said, or the exception."""
    if isinstance(exc, subprocess.CalledProcessError):
        said = exc.stderr.decode().strip().splitlines()
        return f"{' '.join(exc.cmd)}: {said[0] if said else exc.returncode}"
    return first_line(exc)


def _undo(made: list[list[str]]) -> None:
    """Remove what was made, newest first; a thing already gone (a veth whose namespace went
    first) is no failure."""
    for undo in reversed(made):
        subprocess.run(["ip", *undo], check=False, capture_output=True)
