"""The peer list of a Domain as served by register (`peer_snapshot`) and the state pull (`peers`).

A per-process cache of domain.peer_list.PeerProjection per Domain, kept fresh by the Domain's
durable event log rather than trusted: every anchored-Peer change appends its event in the same
transaction (anchoring, node deletion, key rotation, endpoint reports and the sweeper's
tombstone), and within a Domain sequence order is commit order. So a request learns the Domain's
latest seq (one index-only read), and when the cache is behind it folds in only the newer events,
or rebuilds from the tables when the gap is large or an event is not understood. Any number of
server processes stay correct: none of this is a source of truth.

`reference_json` computes the same bytes with no cache at all; tests compare the two.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict

import asyncpg
import orjson

from plexsphere.db import peers as peers_db
from plexsphere.domain.peer_list import PeerEntry, PeerProjection
from plexsphere.services import events, psk

log = logging.getLogger(__name__)

# Past this many newer events a rebuild (one read of the Domain's peers) beats folding them in.
MAX_INCREMENTAL_EVENTS = 500
MAX_CACHED_DOMAINS = 64


class _DomainPeers:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.projection: PeerProjection | None = None


class PeerLists:
    """The cached projections of one database (one per pool), least recently used Domains dropped."""

    def __init__(self) -> None:
        self._domains: OrderedDict[uuid.UUID, _DomainPeers] = OrderedDict()
        self.rebuilds = 0

    def _slot(self, domain_id: uuid.UUID) -> _DomainPeers:
        slot = self._domains.get(domain_id)
        if slot is None:
            slot = self._domains[domain_id] = _DomainPeers()
            while len(self._domains) > MAX_CACHED_DOMAINS:
                self._domains.popitem(last=False)
        else:
            self._domains.move_to_end(domain_id)
        return slot

    async def projection(self, pool: asyncpg.Pool, domain_id: uuid.UUID, latest_seq: int | None = None
                         ) -> PeerProjection:
        """The Domain's projection as of at least `latest_seq` (read now when not given)."""
        slot = self._slot(domain_id)
        if latest_seq is None:
            latest_seq = await events.latest_seq(pool, domain_id)
        current = slot.projection
        if current is not None and current.seq >= latest_seq:
            return current
        async with slot.lock:  # one catch-up per Domain at a time; the waiters then find it done
            current = slot.projection
            if current is not None and current.seq >= latest_seq:
                return current
            slot.projection = await self._catch_up(pool, domain_id, current)
            return slot.projection

    async def _catch_up(self, pool: asyncpg.Pool, domain_id: uuid.UUID,
                        current: PeerProjection | None) -> PeerProjection:
        if current is not None:
            rows = await events.read_after(pool, domain_id, current.seq, limit=MAX_INCREMENTAL_EVENTS + 1)
            if len(rows) <= MAX_INCREMENTAL_EVENTS and _fold(current, rows):
                return current
        self.rebuilds += 1
        return await load(pool, domain_id)

    def forget(self, domain_id: uuid.UUID) -> None:
        self._domains.pop(domain_id, None)


def _fold(projection: PeerProjection, rows: list[asyncpg.Record]) -> bool:
    for row in rows:
        try:
            payload = orjson.loads(row["envelope"])["payload"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            payload = None
        if not isinstance(payload, dict) or not projection.apply(row["seq"], row["type"], payload):
            log.info("peer list: rebuilding after event %s (%s)", row["seq"], row["type"])
            return False  # the projection is discarded: a half-applied one is never served
    return True


def entry_from_row(row: asyncpg.Record) -> PeerEntry:
    obj = psk.peer_object(row)
    return PeerEntry(obj["node_id"], obj["mesh_ip"], obj["public_key"], obj.get("endpoint"), row["nat_type"],
                     row["kind"] == "bridge")


async def load(pool: asyncpg.Pool, domain_id: uuid.UUID) -> PeerProjection:
    """A fresh projection from the tables: the peers and the seq they correspond to read in one
    snapshot, so the events after that seq are exactly the changes since."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        seq = await events.latest_seq(conn, domain_id)
        rows = await peers_db.domain_peers(conn, domain_id)
    return PeerProjection(seq, (entry_from_row(r) for r in rows))


_registry: dict[int, tuple[asyncpg.Pool, PeerLists]] = {}


def peer_lists(pool: asyncpg.Pool) -> PeerLists:
    """The process's cache for this pool's database."""
    held = _registry.get(id(pool))
    if held is None or held[0] is not pool:
        held = _registry[id(pool)] = (pool, PeerLists())
    return held[1]


async def peers_json(pool: asyncpg.Pool, domain_id: uuid.UUID, *, exclude: uuid.UUID,
                     relay_endpoint: str | None = None, latest_seq: int | None = None) -> bytes:
    """The JSON array of the Domain's anchored Peers but `exclude`. With `relay_endpoint` (the state
    pull of a Node that is not a bridge, when the Domain has a relay), every non-bridge Peer carries
    it as `fallback_endpoint`."""
    projection = await peer_lists(pool).projection(pool, domain_id, latest_seq)
    return projection.as_json(str(exclude), relay_endpoint)


async def reference_json(conn: asyncpg.Connection, domain_id: uuid.UUID, *, exclude: uuid.UUID,
                         relay_endpoint: str | None = None) -> bytes:
    """The same bytes computed from the tables with no cache (what node_state did per request)."""
    rows = await peers_db.other_peers(conn, domain_id, exclude)
    peers = []
    for row in rows:
        peer = psk.peer_object(row)
        if relay_endpoint and row["kind"] != "bridge":
            peer["fallback_endpoint"] = relay_endpoint
        peers.append(peer)
    return orjson.dumps(peers)
