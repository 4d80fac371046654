"""The peer list of a Domain: every anchored Peer's projection (DECISIONS 7), pre-encoded as JSON
and kept sorted by node id, so register's `peer_snapshot` and the state pull's `peers` are a
byte join instead of a per-row rebuild. Pure: no I/O.

The projection changes only through the Domain's event log, so `apply` folds one event's payload
in. It answers False when it cannot (an event type it does not know, a payload it cannot read):
the caller then rebuilds from the tables rather than guess.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

# Event types that change the projection, and those known to leave it alone (anything else makes
# the caller rebuild: a new writer of peers that forgot this list costs a rebuild, never a wrong body).
PEER_EVENTS = frozenset({"peer_added", "peer_removed", "peer_key_rotated", "peer_endpoint_changed"})
UNRELATED_EVENTS = frozenset({
    "rotate_keys", "signing_key_rotated", "node_state_updated", "policy_updated", "bridge_config_updated",
    "session_setup", "session_revoked",
})

@dataclass
class PeerEntry:
    """One Peer as served: the projection's fields (no fallback_endpoint)."""

    node_id: str
    mesh_ip: str
    public_key: str
    endpoint: str | None
    nat_type: str | None
    is_bridge: bool = False

    def as_object(self) -> dict[str, Any]:
        """Exactly services.psk.peer_object's dict: optional keys absent when unknown."""
        obj: dict[str, Any] = {"node_id": self.node_id, "mesh_ip": self.mesh_ip, "public_key": self.public_key}
        if self.endpoint:
            obj["endpoint"] = self.endpoint
        if self.nat_type:
            obj["nat_type"] = self.nat_type
        if self.is_bridge:
            obj["kind"] = "bridge"
        return obj

    def encode(self, fallback_endpoint: str | None = None) -> bytes:
        obj = self.as_object()
        if fallback_endpoint:
            obj["fallback_endpoint"] = fallback_endpoint
        # orjson hands back its 4 KiB working buffer; an exact-size copy keeps a cached Domain of
        # 10,000 Peers at ~1.5 MiB of blobs instead of ~40 MiB.
        return bytes(memoryview(orjson.dumps(obj)))


class PeerProjection:
    """The anchored Peers of one Domain as of event `seq`, sorted by node id."""

    def __init__(self, seq: int, entries: Iterable[PeerEntry] = ()) -> None:
        self.seq = seq
        self._ids: list[str] = []
        self._blobs: list[bytes] = []
        self._entries: dict[str, PeerEntry] = {}
        self._all: bytes | None = None  # the whole array, built once per change
        # The blobs with every non-bridge Peer carrying `fallback_endpoint`, for one relay endpoint.
        self._relayed: tuple[str, list[bytes]] | None = None
        for entry in sorted(entries, key=lambda e: e.node_id):
            self._ids.append(entry.node_id)
            self._blobs.append(entry.encode())
            self._entries[entry.node_id] = entry

    def __len__(self) -> int:
        return len(self._ids)

    def entry(self, node_id: str) -> PeerEntry | None:
        return self._entries.get(node_id)

    def node_ids(self, *, bridges: bool = True) -> list[str]:
        """The anchored node ids in order; without the bridges when `bridges` is False."""
        return list(self._ids) if bridges else [i for i in self._ids if not self._entries[i].is_bridge]

    # -- changes ----------------------------------------------------------------------------------
    def upsert(self, entry: PeerEntry) -> None:
        self._all = self._relayed = None
        i = bisect_left(self._ids, entry.node_id)
        if i < len(self._ids) and self._ids[i] == entry.node_id:
            self._blobs[i] = entry.encode()
        else:
            self._ids.insert(i, entry.node_id)
            self._blobs.insert(i, entry.encode())
        self._entries[entry.node_id] = entry

    def remove(self, node_id: str) -> None:
        if self._entries.pop(node_id, None) is None:
            return  # never anchored, or already gone: nothing to do
        self._all = self._relayed = None
        i = bisect_left(self._ids, node_id)
        del self._ids[i], self._blobs[i]

    def apply(self, seq: int, event_type: str, payload: Mapping[str, Any]) -> bool:
        """Folds one event in; False when the caller must rebuild instead (then nothing changed
        that matters: the projection is about to be replaced)."""
        if event_type not in PEER_EVENTS:
            if event_type in UNRELATED_EVENTS:
                self.seq = max(self.seq, seq)
                return True
            return False
        try:
            node_id = str(payload["node_id"])
            known = self._entries.get(node_id)
            if event_type == "peer_added":
                # A fresh Peer row: no reported endpoint or NAT type yet unless the payload says so.
                self.upsert(PeerEntry(node_id, str(payload["mesh_ip"]), str(payload["public_key"]),
                                      payload.get("endpoint") or None, payload.get("nat_type"),
                                      payload.get("kind") == "bridge"))
            elif event_type == "peer_removed":
                self.remove(node_id)
            elif known is None:
                pass  # a change to a Node that is not (or no longer) anchored changes no list
            elif event_type == "peer_key_rotated":
                # Only the key: the rest of a rotation's payload is what the rotation read, not news.
                self.upsert(PeerEntry(node_id, known.mesh_ip, str(payload["public_key"]), known.endpoint,
                                      known.nat_type, known.is_bridge))
            else:  # peer_endpoint_changed: a report (with nat_type) or the sweeper's tombstone (without)
                nat_type = payload["nat_type"] if "nat_type" in payload else known.nat_type
                self.upsert(PeerEntry(node_id, known.mesh_ip, known.public_key, payload.get("endpoint") or None,
                                      nat_type, known.is_bridge))
        except (KeyError, TypeError):
            return False
        self.seq = max(self.seq, seq)
        return True

    # -- serving ----------------------------------------------------------------------------------
    def as_json(self, exclude: str | None = None, relay_endpoint: str | None = None) -> bytes:
        """The JSON array of every Peer but `exclude`, sorted by node id. With `relay_endpoint`,
        every Peer that is not a bridge carries it as `fallback_endpoint` (bridges are reached
        directly)."""
        blobs = self._blobs
        if relay_endpoint:
            if self._relayed is None or self._relayed[0] != relay_endpoint:
                self._relayed = (relay_endpoint, [
                    blob if self._entries[node_id].is_bridge else self._entries[node_id].encode(relay_endpoint)
                    for node_id, blob in zip(self._ids, self._blobs, strict=True)
                ])
            blobs = self._relayed[1]
        i = bisect_left(self._ids, exclude) if exclude is not None else len(self._ids)
        if i < len(self._ids) and self._ids[i] == exclude:
            return b"[" + b",".join(blobs[:i]) + (b"," if 0 < i < len(blobs) - 1 else b"") \
                + b",".join(blobs[i + 1:]) + b"]"
        if relay_endpoint:
            return b"[" + b",".join(blobs) + b"]"
        if self._all is None:
            self._all = b"[" + b",".join(blobs) + b"]"
        return self._all
