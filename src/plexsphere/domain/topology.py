"""The mesh topology (N·(N−1) directed edges) as pure rules plus a chunked JSON encoder, so a
Domain of 1,000 Nodes (~1 M edges) streams in flat memory instead of materialising per-pair objects.

Relaying: NAT hole punching fails when one end is behind a symmetric NAT and the other behind a
symmetric or port-restricted NAT. Such an edge is `relayed` through a bridge Node when one is
anchored (the healthiest, then lowest node id, excluding the edge's own ends); otherwise, or when
either end is itself a bridge, the edge is `direct`. An edge's status is the worst reachability of
the Nodes it depends on (both ends, plus the relay when relayed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import orjson

from plexsphere.domain.reachability import HEALTHY, STATES, worse

_UNTRAVERSABLE_WITH_SYMMETRIC = frozenset({"symmetric", "port_restricted"})


@dataclass(frozen=True)
class TopologyNode:
    node_id: str
    mesh_ip: str
    reachability: str
    nat_type: str | None = None
    is_bridge: bool = False


def needs_relay(nat_a: str | None, nat_b: str | None) -> bool:
    if nat_a == "symmetric":
        return nat_b in _UNTRAVERSABLE_WITH_SYMMETRIC
    if nat_b == "symmetric":
        return nat_a in _UNTRAVERSABLE_WITH_SYMMETRIC
    return False


def relay_candidates(nodes: Sequence[TopologyNode]) -> list[TopologyNode]:
    """Bridges in preference order: healthiest first, then lowest node id."""
    rank = {state: i for i, state in enumerate(STATES)}
    return sorted((n for n in nodes if n.is_bridge), key=lambda n: (rank[n.reachability], n.node_id))


def relay_for(source: TopologyNode, target: TopologyNode, candidates: Sequence[TopologyNode]) -> TopologyNode | None:
    if source.is_bridge or target.is_bridge or not needs_relay(source.nat_type, target.nat_type):
        return None
    for bridge in candidates:
        if bridge.node_id not in (source.node_id, target.node_id):
            return bridge
    return None


def edge(source: TopologyNode, target: TopologyNode, candidates: Sequence[TopologyNode]) -> dict:
    relay = relay_for(source, target, candidates)
    ends = (source.reachability, target.reachability) + ((relay.reachability,) if relay else ())
    return {
        "source_node_id": source.node_id,
        "target_node_id": target.node_id,
        "mode": "relayed" if relay else "direct",
        "relay_node_id": relay.node_id if relay else None,
        "status": worse(*ends),
    }


def edge_count(n: int) -> int:
    return n * (n - 1)


def summary(nodes: Sequence[TopologyNode]) -> dict:
    """Edge counts by mode and status without listing the edges (for very large Domains), in O(N).

    An edge's mode and status depend only on its ends' (reachability, NAT class, bridge flag) and
    on the Domain's preferred bridge — a relayed edge never has a bridge at either end, so its
    relay is always the first candidate. So the Nodes are counted per class and each of the (at
    most 18²) ordered class pairs contributes count(a)·count(b) edges, or count(a)·(count(a)−1)
    for a class with itself."""
    candidates = relay_candidates(nodes)
    relay = candidates[0] if candidates else None
    classes = Counter(
        (n.reachability, n.nat_type if n.nat_type in _UNTRAVERSABLE_WITH_SYMMETRIC else None, n.is_bridge)
        for n in nodes
    )
    by_mode = {"direct": 0, "relayed": 0}
    by_status = dict.fromkeys(STATES, 0)
    for a, count_a in classes.items():
        for b, count_b in classes.items():
            pairs = count_a * (count_a - 1) if a == b else count_a * count_b
            if not pairs:
                continue
            relayed = relay is not None and not a[2] and not b[2] and needs_relay(a[1], b[1])
            status = worse(a[0], b[0], relay.reachability) if relayed else worse(a[0], b[0])
            by_mode["relayed" if relayed else "direct"] += pairs
            by_status[status] += pairs
    return {"edge_count": edge_count(len(nodes)), "edges_by_mode": by_mode, "edges_by_status": by_status}


def stream_json(domain_id: str, generated_at: str, nodes: Sequence[TopologyNode],
                extra: dict | None = None) -> Iterator[bytes]:
    """The MeshTopology JSON document in chunks: one chunk for the head and node list, then one
    chunk per source Node holding its N−1 edges. Plain (non-relayed) edges come from a pre-encoded
    template, so the per-edge cost is one bytes join."""
    head = {"domain_id": domain_id, "generated_at": generated_at}
    yield orjson.dumps(head)[:-1] + b',"nodes":' + orjson.dumps(
        [{"node_id": n.node_id, "mesh_ip": n.mesh_ip, "reachability": n.reachability} for n in nodes]
    ) + b',"edges":['
    candidates = relay_candidates(nodes)
    relay_exists = bool(candidates)
    ids = [n.node_id.encode() for n in nodes]
    first = True
    for i, source in enumerate(nodes):
        src_prefix = b'{"source_node_id":"' + ids[i] + b'","target_node_id":"'
        parts: list[bytes] = []
        for j, target in enumerate(nodes):
            if i == j:
                continue
            if relay_exists and needs_relay(source.nat_type, target.nat_type):
                parts.append(orjson.dumps(edge(source, target, candidates)))
                continue
            status = source.reachability if source.reachability == target.reachability or \
                target.reachability == HEALTHY else worse(source.reachability, target.reachability)
            parts.append(src_prefix + ids[j] + b'","mode":"direct","relay_node_id":null,"status":"'
                         + status.encode() + b'"}')
        if parts:
            chunk = b",".join(parts)
            yield chunk if first else b"," + chunk
            first = False
    tail = b"]"
    if extra:
        tail += b"," + orjson.dumps(extra)[1:-1]
    yield tail + b"}"
