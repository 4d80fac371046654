"""The wireguard-go UAPI text protocol (encoding of set transactions, parsing of get dumps) and the
`wg show dump` parser of the kernel backend."""

from __future__ import annotations

import pytest

from plexsphere.agent.model import PeerConfig, RemovePeer, SetListenPort, SetPrivateKey, UpsertPeer, key_b64
from plexsphere.agent.wireguard import uapi
from plexsphere.agent.wireguard.kernel import parse_dump

K_A, K_B = bytes(range(32)), bytes(range(32, 64))
PSK = bytes([7]) * 32


def test_set_transaction_encodes_every_operation_kind() -> None:
    ops = [
        SetPrivateKey(bytes([1]) * 32),
        SetListenPort(51820),
        RemovePeer(K_B),
        UpsertPeer(PeerConfig(public_key=K_A, allowed_ips=("10.50.0.2",), endpoint="192.0.2.2:51820",
                              preshared_key=PSK, persistent_keepalive=25)),
    ]
    assert uapi.encode_set(ops).decode().split("\n") == [
        "set=1",
        "private_key=" + "01" * 32,
        "listen_port=51820",
        "public_key=" + K_B.hex(), "remove=true",
        "public_key=" + K_A.hex(),
        "preshared_key=" + "07" * 32,
        "endpoint=192.0.2.2:51820",
        "persistent_keepalive_interval=25",
        "replace_allowed_ips=true",
        "allowed_ip=10.50.0.2/32",
        "", "",
    ]


def test_upsert_without_psk_clears_it_and_without_endpoint_omits_it() -> None:
    text = uapi.encode_set([UpsertPeer(PeerConfig(public_key=K_A, allowed_ips=("10.50.0.2/32",)))]).decode()
    assert "preshared_key=" + "0" * 64 in text
    assert "endpoint=" not in text


def test_hostname_endpoints_go_through_the_resolver() -> None:
    op = UpsertPeer(PeerConfig(public_key=K_A, allowed_ips=("10.50.0.2/32",), endpoint="relay.example:51820"))
    text = uapi.encode_set([op], resolve_endpoint=lambda e: "192.0.2.77:51820").decode()
    assert "endpoint=192.0.2.77:51820" in text


GET_REPLY = (
    "private_key=" + "01" * 32 + "\n"
    "listen_port=51820\n"
    "public_key=" + K_A.hex() + "\n"
    "preshared_key=" + "07" * 32 + "\n"
    "protocol_version=1\n"
    "endpoint=192.0.2.2:51820\n"
    "last_handshake_time_sec=1000\n"
    "last_handshake_time_nsec=500000000\n"
    "tx_bytes=404\nrx_bytes=348\n"
    "persistent_keepalive_interval=25\n"
    "allowed_ip=10.50.0.2/32\n"
    "public_key=" + K_B.hex() + "\n"
    "preshared_key=" + "00" * 32 + "\n"
    "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\n"
    "persistent_keepalive_interval=0\n"
    "allowed_ip=10.50.0.3/32\nallowed_ip=fd00::3/128\n"
    "errno=0\n\n"
)


def test_get_reply_parses_into_interface_peers_and_status() -> None:
    dump = uapi.parse_get(GET_REPLY, now=1010.5)
    assert dump.private_key == bytes([1]) * 32 and dump.listen_port == 51820
    assert dump.peers[K_A] == PeerConfig(public_key=K_A, allowed_ips=("10.50.0.2/32",), endpoint="192.0.2.2:51820",
                                         preshared_key=PSK, persistent_keepalive=25)
    assert dump.peers[K_B] == PeerConfig(public_key=K_B, allowed_ips=("10.50.0.3/32", "fd00::3/128"),
                                         persistent_keepalive=0)
    assert dump.status[K_A].latest_handshake_age == pytest.approx(10.0)
    assert dump.status[K_A].rx_bytes == 348
    assert dump.status[K_B].latest_handshake_age is None


def test_get_reply_with_error_errno_raises() -> None:
    with pytest.raises(uapi.UapiError):
        uapi.parse_get("errno=19\n\n", now=0)
    assert uapi.parse_errno("errno=0\n\n") == 0


def test_wg_show_dump_parses_like_the_uapi_dump() -> None:
    dump = (f"{key_b64(bytes([1]) * 32)}\t{key_b64(bytes([2]) * 32)}\t51820\toff\n"
            f"{key_b64(K_A)}\t{key_b64(PSK)}\t192.0.2.2:51820\t10.50.0.2/32\t1000\t348\t404\t25\n"
            f"{key_b64(K_B)}\t(none)\t(none)\t10.50.0.3/32,fd00::3/128\t0\t0\t0\toff\n")
    private, port, peers, status = parse_dump(dump, now=1030)
    assert private == bytes([1]) * 32 and port == 51820
    assert peers[K_A].preshared_key == PSK and peers[K_A].endpoint == "192.0.2.2:51820"
    assert peers[K_B] == PeerConfig(public_key=K_B, allowed_ips=("10.50.0.3/32", "fd00::3/128"),
                                    persistent_keepalive=0)
    assert status[K_A].latest_handshake_age == 30 and status[K_B].latest_handshake_age is None
