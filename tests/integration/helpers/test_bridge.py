"""The Docker bridge's address (helpers/bridge.py): the parsing and the fallbacks, with no
daemon; the kernel reads against the loopback interface every Linux machine has."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest

from .bridge import (
    BridgeNetwork,
    choose_bridge_address,
    interface_addresses,
    parse_network,
)

# `docker network inspect bridge --format '{{json .}}'` on a freshly set-up Debian 12 machine
# (docker.io 20.10), shortened: the IPAM config has no Gateway.
FRESH_DEBIAN = {
    "Name": "bridge",
    "Driver": "bridge",
    "EnableIPv6": False,
    "IPAM": {"Driver": "default", "Options": None, "Config": [{"Subnet": "172.17.0.0/16"}]},
    "Options": {
        "com.docker.network.bridge.default_bridge": "true",
        "com.docker.network.bridge.name": "docker0",
        "com.docker.network.driver.mtu": "1500",
    },
}
SUBNET = IPv4Network("172.17.0.0/16")
GATEWAY = IPv4Address("172.17.0.1")


def network(**changes: Any) -> BridgeNetwork:
    facts: dict[str, Any] = {"interface": "docker0", "subnets": (SUBNET,), "gateways": ()}
    return BridgeNetwork(**{**facts, **changes})


def test_a_config_without_gateway_gives_the_subnet_and_the_default_interface() -> None:
    assert parse_network(FRESH_DEBIAN) == network()


def test_the_ipv4_gateway_and_a_renamed_bridge_are_read() -> None:
    document = {
        "IPAM": {
            "Config": [
                {"Subnet": "fd00:dead:beef::/48", "Gateway": "fd00:dead:beef::1"},
                {"Subnet": "10.99.0.0/24", "Gateway": "10.99.0.1"},
            ]
        },
        "Options": {"com.docker.network.bridge.name": "br-ci"},
    }
    assert parse_network(document) == BridgeNetwork(
        interface="br-ci",
        subnets=(IPv4Network("10.99.0.0/24"),),
        gateways=(IPv4Address("10.99.0.1"),),
    )


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"IPAM": None, "Options": None},
        {"IPAM": {"Config": None}},
        {"IPAM": {"Config": [{"Subnet": "", "Gateway": "not-an-address"}]}},
    ],
)
def test_missing_or_odd_values_leave_nothing_but_the_default_interface(
    document: dict[str, Any],
) -> None:
    assert parse_network(document) == network(subnets=())


def test_the_reported_gateway_comes_first() -> None:
    found = choose_bridge_address(
        network(gateways=(GATEWAY,)),
        {"docker0": IPv4Address("172.17.0.9"), "br-extra": GATEWAY},
    )
    assert found == "172.17.0.1"


def test_without_a_reported_gateway_the_bridge_interface_gives_it() -> None:
    addresses = {
        "lo": IPv4Address("127.0.0.1"),
        "eth0": IPv4Address("192.0.2.7"),
        "docker0": GATEWAY,
    }
    assert choose_bridge_address(network(), addresses) == "172.17.0.1"


def test_a_gateway_that_is_not_ours_falls_back_to_the_interface() -> None:
    found = choose_bridge_address(
        network(gateways=(IPv4Address("172.17.0.254"),)), {"docker0": GATEWAY}
    )
    assert found == "172.17.0.1"


def test_an_interface_in_the_subnet_stands_in_for_a_renamed_bridge() -> None:
    addresses = {"eth0": IPv4Address("192.0.2.7"), "br-renamed": IPv4Address("172.17.0.1")}
    assert choose_bridge_address(network(), addresses) == "172.17.0.1"


def test_the_interface_must_lie_in_the_subnet_and_not_be_loopback() -> None:
    with pytest.raises(AssertionError) as raised:
        choose_bridge_address(
            network(gateways=(IPv4Address("127.0.0.1"),)),
            {"lo": IPv4Address("127.0.0.1"), "docker0": IPv4Address("10.0.0.1")},
        )
    message = str(raised.value)
    assert "gateway 127.0.0.1: not an address the containers reach" in message
    assert "interface docker0 10.0.0.1: outside the bridge's subnet" in message


def test_no_candidate_fails_naming_every_source() -> None:
    with pytest.raises(AssertionError) as raised:
        choose_bridge_address(
            network(gateways=(IPv4Address("172.17.0.1"),)), {"eth0": IPv4Address("192.0.2.7")}
        )
    message = str(raised.value)
    assert "subnet 172.17.0.0/16" in message
    assert "gateway 172.17.0.1: not an address of this machine" in message
    assert "interface docker0: none with an IPv4 address" in message
    assert "Is dockerd running here" in message


def test_a_config_without_gateway_and_no_bridge_interface_says_both() -> None:
    with pytest.raises(AssertionError) as raised:
        choose_bridge_address(network(), {"lo": IPv4Address("127.0.0.1")})
    message = str(raised.value)
    assert "no IPv4 Gateway" in message
    assert "interface docker0: none with an IPv4 address" in message


def test_the_kernel_reports_the_loopback_interface() -> None:
    assert interface_addresses().get("lo") == IPv4Address("127.0.0.1")
