"""The mesh topology (N·(N−1) directed edges) as pure rules plus a chunked JSON encoder, so a
Domain of 1,000 Nodes (~1 M edges) streams in flat memory instead of materialising per-pair objects.

An edge's mode is what its source Node last reported (heartbeat `nat_summary.relayed_peers`: the
peers it sends to through a relay, and which one); a source that never reported is predicted from
the NAT types (domain/relays.py): `relayed` through the Domain's first relay when hole punching
cannot join the two ends, else `direct`. An edge's status is the worst reachability of the Nodes
it depends on (both ends, plus the relay when relayed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from plexsphere.domain.reachability import HEALTHY, STATES, worse
from plexsphere.domain.relays import Relay, needs_relay, predicted_relay, relay_for_pair

_NAT_CLASSES = frozenset({"symmetric", "port_restricted"})


@dataclass(frozen=True)
class TopologyNode:
    node_id: str
    mesh_ip: str
    reachability: str
    nat_type: str | None = None
    is_bridge: bool = False
    # {peer node id: relay node id} as last reported; None = never reported (the mode is predicted)
    relayed_peers: Mapping[str, str] | None = field(default=None, hash=False, compare=False)


def edge_relay(source: TopologyNode, target: TopologyNode, relays: Sequence[Relay]) -> str | None:
    """The relay node id the edge source → target goes through, or None when it is direct."""
    if source.relayed_peers is not None:
        return source.relayed_peers.get(target.node_id)
    relay = relay_for_pair(source.node_id, target.node_id, relays)
    predicted = predicted_relay(source.nat_type, target.nat_type, source.is_bridge, target.is_bridge, relay)
    return predicted.node_id if predicted else None


def edge(source: TopologyNode, target: TopologyNode, relays: Sequence[Relay],
         reachability: Mapping[str, str] | None = None) -> dict:
    relay_id = edge_relay(source, target, relays)
    ends = (source.reachability, target.reachability)
    if relay_id is not None and reachability is not None and relay_id in reachability:
        ends += (reachability[relay_id],)
    return {
        "source_node_id": source.node_id,
        "target_node_id": target.node_id,
        "mode": "relayed" if relay_id else "direct",
        "relay_node_id": relay_id,
        "status": worse(*ends),
    }


def edge_count(n: int) -> int:
    return n * (n - 1)


def summary(nodes: Sequence[TopologyNode], relays: Sequence[Relay]) -> dict:
    """Edge counts by mode and status without listing the edges (for very large Domains), in
    O(N + reported relayed edges).

    A predicted edge's mode and status depend only on its ends' (reachability, NAT class, bridge
    flag) and on the Domain's first relay (a predicted relayed edge never has a bridge at either
    end, so its relay is the first relay). Nodes are counted per class (plus whether they
    reported), each ordered class pair contributes count(a)·count(b) edges (count(a)·(count(a)−1)
    with itself), and the few edges reported as relayed are then moved to their bucket."""
    relay = relays[0] if relays else None
    reach = {n.node_id: n.reachability for n in nodes}
    classes = Counter(
        (n.reachability, n.nat_type if n.nat_type in _NAT_CLASSES else None, n.is_bridge,
         n.relayed_peers is not None)
        for n in nodes
    )
    by_mode = {"direct": 0, "relayed": 0}
    by_status = dict.fromkeys(STATES, 0)
    for a, count_a in classes.items():
        for b, count_b in classes.items():
            pairs = count_a * (count_a - 1) if a == b else count_a * count_b
            if not pairs:
                continue
            relayed = (not a[3] and relay is not None and not a[2] and not b[2] and needs_relay(a[1], b[1]))
            status = worse(a[0], b[0], relay.reachability) if relayed and relay else worse(a[0], b[0])
            by_mode["relayed" if relayed else "direct"] += pairs
            by_status[status] += pairs
    for source in nodes:  # reported relayed edges: counted above as direct
        for target_id, relay_id in (source.relayed_peers or {}).items():
            if target_id not in reach or target_id == source.node_id:
                continue
            plain = worse(source.reachability, reach[target_id])
            by_mode["direct"] -= 1
            by_mode["relayed"] += 1
            by_status[plain] -= 1
            by_status[worse(plain, reach[relay_id]) if relay_id in reach else plain] += 1
    return {"edge_count": edge_count(len(nodes)), "edges_by_mode": by_mode, "edges_by_status": by_status}


def stream_json(domain_id: str, generated_at: str, nodes: Sequence[TopologyNode], relays: Sequence[Relay] = (),
                extra: dict | None = None) -> Iterator[bytes]:
    """The MeshTopology JSON document in chunks: one chunk for the head and node list, then one
    chunk per source Node holding its N−1 edges. Plain (non-relayed) edges come from a pre-encoded
    template, so the per-edge cost is one bytes join."""
    head = {"domain_id": domain_id, "generated_at": generated_at}
    yield orjson.dumps(head)[:-1] + b',"nodes":' + orjson.dumps(
        [{"node_id": n.node_id, "mesh_ip": n.mesh_ip, "reachability": n.reachability} for n in nodes]
    ) + b',"edges":['
    relay_exists = bool(relays)
    reach = {n.node_id: n.reachability for n in nodes}
    ids = [n.node_id.encode() for n in nodes]
    first = True
    for i, source in enumerate(nodes):
        src_prefix = b'{"source_node_id":"' + ids[i] + b'","target_node_id":"'
        parts: list[bytes] = []
        for j, target in enumerate(nodes):
            if i == j:
                continue
            reported = source.relayed_peers
            if (target.node_id in reported) if reported is not None else (
                    relay_exists and needs_relay(source.nat_type, target.nat_type)):
                parts.append(orjson.dumps(edge(source, target, relays, reach)))
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
