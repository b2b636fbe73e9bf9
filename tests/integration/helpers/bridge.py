"""The Docker bridge's address on this machine: an address of the host that only it and its
containers reach, where the tests put a forwarder for an engine "elsewhere" (test_remote_engine)
or for the loopback registry seen from a rootless engine (test_rootless_engine).

``docker network inspect bridge`` does not always say it: on a freshly set-up Debian 12 machine
the IPAM config is ``{"Subnet": "172.17.0.0/16"}``, without ``Gateway``. The kernel always knows:
the gateway is the address of the bridge's interface (``docker0`` unless the daemon names it
otherwise). So, in this order:

1. the ``Gateway`` of the network's IPv4 IPAM config, when the daemon reports one;
2. the IPv4 address of the bridge's interface (``com.docker.network.bridge.name``, default
   ``docker0``), read from the kernel with the ``SIOCGIFADDR`` ioctl (no ``ip`` binary needed);
3. any interface's IPv4 address inside the bridge's subnet (a bridge renamed behind our back).

Each candidate must be an IPv4 address, not loopback, inside the bridge's subnet (when one is
known) and an address of this machine, one the kernel reports for an interface (a daemon reached
through ``DOCKER_HOST`` elsewhere reports a gateway that is not ours; a test bind would not tell,
under ``net.ipv4.ip_nonlocal_bind``). When none is, the error says what every source gave.
"""

from __future__ import annotations

import fcntl
import json
import socket
import struct
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from typing import Any

DEFAULT_INTERFACE = "docker0"
INTERFACE_OPTION = "com.docker.network.bridge.name"
SIOCGIFADDR = 0x8915  # <linux/sockios.h>: get an interface's (primary) IPv4 address
IFNAMSIZ = 16


@dataclass(frozen=True)
class BridgeNetwork:
    """What ``docker network inspect`` says about a bridge network (IPv4 only)."""

    interface: str
    subnets: tuple[IPv4Network, ...]
    gateways: tuple[IPv4Address, ...]


def parse_network(document: Mapping[str, Any]) -> BridgeNetwork:
    """The bridge facts of one network as ``docker network inspect --format '{{json .}}'``
    prints it; IPv6 entries and values that are not addresses are left out."""
    options = document.get("Options") or {}
    interface = str(options.get(INTERFACE_OPTION) or DEFAULT_INTERFACE)
    subnets: list[IPv4Network] = []
    gateways: list[IPv4Address] = []
    for config in (document.get("IPAM") or {}).get("Config") or []:
        try:
            subnet = ip_network(str(config.get("Subnet") or ""), strict=False)
        except ValueError:
            pass
        else:
            if isinstance(subnet, IPv4Network):
                subnets.append(subnet)
        try:
            gateway = ip_address(str(config.get("Gateway") or ""))
        except ValueError:
            pass
        else:
            if isinstance(gateway, IPv4Address):
                gateways.append(gateway)
    return BridgeNetwork(interface=interface, subnets=tuple(subnets), gateways=tuple(gateways))


def interface_addresses() -> dict[str, IPv4Address]:
    """Every network interface of this machine with its (primary) IPv4 address, from the
    kernel; interfaces without one are left out."""
    found: dict[str, IPv4Address] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[: IFNAMSIZ - 1])
            try:
                reply = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, request)
            except OSError:  # EADDRNOTAVAIL: no IPv4 address; ENODEV: gone meanwhile
                continue
            # struct ifreq: the name (IFNAMSIZ bytes), then a sockaddr_in: family (2 bytes),
            # port (2 bytes), address (4 bytes)
            found[name] = IPv4Address(reply[IFNAMSIZ + 4 : IFNAMSIZ + 8])
    return found


def _candidates(
    network: BridgeNetwork, addresses: Mapping[str, IPv4Address]
) -> Iterable[tuple[str, IPv4Address]]:
    for gateway in network.gateways:
        yield "the network's IPAM gateway", gateway
    if network.interface in addresses:
        yield f"interface {network.interface}", addresses[network.interface]
    for name, address in sorted(addresses.items()):
        if name != network.interface and any(address in s for s in network.subnets):
            yield f"interface {name}", address


def choose_bridge_address(network: BridgeNetwork, addresses: Mapping[str, IPv4Address]) -> str:
    """The first candidate (see the module's docstring) that is a usable address of the bridge,
    given this machine's interface ``addresses``; AssertionError naming every source and why it
    did not do otherwise."""
    local = set(addresses.values())
    tried: list[str] = []
    for source, address in _candidates(network, addresses):
        if address.is_loopback or address.is_unspecified:
            problem = "not an address the containers reach"
        elif network.subnets and not any(address in s for s in network.subnets):
            problem = "outside the bridge's subnet"
        elif address not in local:
            problem = "not an address of this machine"
        else:
            return str(address)
        tried.append(f"{source} {address}: {problem}")
    if network.interface not in addresses:
        tried.append(f"interface {network.interface}: none with an IPv4 address")
    if not network.gateways:
        tried.append("the network's IPAM config: no IPv4 Gateway")
    subnets = ", ".join(str(s) for s in network.subnets) or "none reported"
    raise AssertionError(
        f"no address of the Docker bridge on this machine (subnet {subnets}); "
        + "; ".join(tried)
        + ". Is dockerd running here with its default bridge network (not --bridge=none)?"
    )


def bridge_gateway(docker: Callable[..., subprocess.CompletedProcess[str]]) -> str:
    """The Docker bridge's gateway: an address of this machine that only it and its containers
    reach. ``docker`` runs the Docker CLI (``helpers.services.docker``)."""
    proc = docker("network", "inspect", "bridge", "--format", "{{json .}}")
    document = json.loads(proc.stdout)
    if not isinstance(document, dict):
        raise AssertionError(f"docker network inspect bridge printed {proc.stdout[:200]!r}")
    return choose_bridge_address(parse_network(document), interface_addresses())
