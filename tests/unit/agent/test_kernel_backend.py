"""The kernel backend's commands (no kernel module needed): keys travel on stdin, never in argv,
where any local user could read them from /proc."""

from __future__ import annotations

import subprocess

import pytest

from plexsphere.agent.model import PeerConfig, RemovePeer, SetListenPort, SetPrivateKey, UpsertPeer, key_b64
from plexsphere.agent.wireguard import kernel

PRIVATE, PEER, PSK = bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32


@pytest.fixture
def commands(monkeypatch) -> list[tuple[list[str], str | None]]:
    seen: list[tuple[list[str], str | None]] = []

    def fake_run(args, input=None, **kwargs):
        seen.append((list(args), input))
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(kernel.subprocess, "run", fake_run)
    return seen


def test_keys_are_passed_on_stdin_only(commands) -> None:
    kernel.KernelBackend("wg-test").apply([
        SetPrivateKey(PRIVATE),
        SetListenPort(51820),
        UpsertPeer(PeerConfig(public_key=PEER, allowed_ips=("10.50.0.2",), endpoint="192.0.2.2:51820",
                              preshared_key=PSK)),
    ])
    secrets = {key_b64(PRIVATE), key_b64(PSK)}
    for argv, _ in commands:
        assert not secrets & set(argv)
    assert commands[0] == (["wg", "set", "wg-test", "private-key", "/dev/stdin"], key_b64(PRIVATE))
    assert commands[1][0] == ["wg", "set", "wg-test", "listen-port", "51820"]
    argv, stdin = commands[2]
    assert argv == ["wg", "set", "wg-test", "peer", key_b64(PEER), "preshared-key", "/dev/stdin",
                    "persistent-keepalive", "25", "allowed-ips", "10.50.0.2/32", "endpoint", "192.0.2.2:51820"]
    assert stdin == key_b64(PSK)


def test_peer_without_psk_clears_it_and_removal_is_by_key(commands) -> None:
    kernel.KernelBackend("wg-test").apply([
        UpsertPeer(PeerConfig(public_key=PEER, allowed_ips=("10.50.0.2/32",), persistent_keepalive=0)),
        RemovePeer(PEER),
    ])
    assert commands[0] == (["wg", "set", "wg-test", "peer", key_b64(PEER), "preshared-key", "/dev/null",
                            "persistent-keepalive", "off", "allowed-ips", "10.50.0.2/32"], None)
    assert commands[1][0] == ["wg", "set", "wg-test", "peer", key_b64(PEER), "remove"]
