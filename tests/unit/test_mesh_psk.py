"""Pure parts of the PSK service: the peer projection and the edge derivation contract."""

from __future__ import annotations

import base64
import ipaddress
import uuid

from plexsphere import crypto
from plexsphere.ids import uuid7
from plexsphere.services.psk import peer_object


def test_peer_object_projects_contract_fields_and_omits_unknown_optionals():
    node_id = uuid7()
    key = bytes(range(32))
    obj = peer_object({"node_id": node_id, "mesh_ip": ipaddress.ip_address("10.50.0.7"), "public_key": key,
                       "endpoint": None, "fallback_endpoint": None})
    assert obj == {"node_id": str(node_id), "mesh_ip": "10.50.0.7", "public_key": base64.b64encode(key).decode()}
    assert len(obj["public_key"]) == 44


def test_peer_object_strips_host_prefix_and_keeps_known_endpoint():
    obj = peer_object({"node_id": uuid7(), "mesh_ip": ipaddress.ip_interface("10.50.0.9/32"),
                       "public_key": bytes(32), "endpoint": "198.51.100.4:51820"})
    assert obj["mesh_ip"] == "10.50.0.9"
    assert obj["endpoint"] == "198.51.100.4:51820"
    assert "fallback_endpoint" not in obj


def test_edge_psk_is_the_same_from_both_ends_and_depends_on_both_inputs():
    a, b = uuid.uuid4(), uuid.uuid4()
    pa, pb = crypto.random_bytes(32), crypto.random_bytes(32)
    assert crypto.derive_edge_psk(a, pa, b, pb) == crypto.derive_edge_psk(b, pb, a, pa)
    assert crypto.derive_edge_psk(a, pa, b, pb) != crypto.derive_edge_psk(a, pa, b, crypto.random_bytes(32))
