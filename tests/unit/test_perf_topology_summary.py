"""`--summary` counts edges from per-class Node counts (O(N)); its totals must be exactly those of
the full, pair-by-pair edge list the topology endpoint streams."""

from __future__ import annotations

import random
from collections import Counter

import orjson
import pytest

from plexsphere.domain import topology
from plexsphere.domain.reachability import STATES
from plexsphere.domain.relays import Relay, relay_order

NATS = (None, "symmetric", "port_restricted", "restricted", "full_cone", "unknown")


def _random_nodes(rng: random.Random, n: int, bridge_share: float) -> list[topology.TopologyNode]:
    nodes = [
        topology.TopologyNode(
            node_id=f"0190{rng.getrandbits(96):024x}", mesh_ip=f"100.64.{i // 250}.{i % 250 + 1}",
            reachability=rng.choice(STATES), nat_type=rng.choice(NATS), is_bridge=rng.random() < bridge_share,
        )
        for i in range(n)
    ]
    if n > 2 and n < 1000:  # some Nodes report their relayed edges (a few of them to unknown Nodes)
        ids = [x.node_id for x in nodes] + ["01900000-0000-7000-8000-000000000000"]
        nodes = [topology.TopologyNode(x.node_id, x.mesh_ip, x.reachability, x.nat_type, x.is_bridge,
                                       {t: rng.choice(ids) for t in rng.sample(ids, rng.randint(0, 3))
                                        if t != x.node_id})
                 if rng.random() < 0.3 else x for x in nodes]
    return nodes


def _relays(nodes: list[topology.TopologyNode]) -> list[Relay]:
    return relay_order(Relay(x.node_id, x.reachability, "203.0.113.1:3478") for x in nodes if x.is_bridge)


def _totals_of_full_document(nodes: list[topology.TopologyNode]) -> dict:
    document = orjson.loads(b"".join(topology.stream_json("d", "t", nodes, _relays(nodes))))
    edges = document["edges"]
    by_mode = {"direct": 0, "relayed": 0}
    by_status = dict.fromkeys(STATES, 0)
    for mode, count in Counter(e["mode"] for e in edges).items():
        by_mode[mode] += count
    for status, count in Counter(e["status"] for e in edges).items():
        by_status[status] += count
    return {"edge_count": len(edges), "edges_by_mode": by_mode, "edges_by_status": by_status}


@pytest.mark.parametrize("seed", range(40))
def test_summary_is_byte_identical_to_the_totals_of_the_full_edge_list(seed):
    rng = random.Random(seed)
    nodes = _random_nodes(rng, rng.randint(0, 40), bridge_share=rng.choice((0.0, 0.05, 0.3, 1.0)))
    assert orjson.dumps(topology.summary(nodes, _relays(nodes))) == orjson.dumps(_totals_of_full_document(nodes))


def test_relayed_edges_take_the_status_of_the_preferred_bridge():
    sym = [topology.TopologyNode(f"a{i}", f"100.64.0.{i + 1}", "healthy", "symmetric") for i in range(3)]
    bridges = [topology.TopologyNode("b0", "100.64.1.1", "unreachable", None, True),
               topology.TopologyNode("b1", "100.64.1.2", "stale", None, True)]
    result = topology.summary(sym + bridges, _relays(sym + bridges))
    # 3 symmetric Nodes: 6 directed edges between them, relayed through the stale bridge b1 (the
    # unreachable b0 is no relay); the 14 edges touching a bridge are direct.
    assert result["edges_by_mode"] == {"direct": 14, "relayed": 6}
    assert result["edges_by_status"]["stale"] == 6 + 6  # relayed ones, plus sym↔b1 both ways
    assert result == _totals_of_full_document(sym + bridges)


def test_summary_of_ten_thousand_nodes_is_linear_work():
    # Pair by pair this is 10⁸ edges (minutes); per class it is a few hundred class pairs.
    nodes = _random_nodes(random.Random(7), 10_000, bridge_share=0.01)
    result = topology.summary(nodes, _relays(nodes))
    assert result["edge_count"] == 10_000 * 9_999
    assert sum(result["edges_by_mode"].values()) == sum(result["edges_by_status"].values()) == 10_000 * 9_999
