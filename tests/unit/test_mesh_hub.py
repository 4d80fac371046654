"""The SSE hub without a network or database: one read per notification whatever the number of
streams, in-memory filtering, coalesced writes, bounded buffers, keep-alive timing."""

from __future__ import annotations

import asyncio
import uuid

import orjson

from plexsphere.server.sse import MAX_PENDING_BYTES, Hub, Stream


class FakePool:
    """Serves `events` rows for the hub's two queries and counts them."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.reads = 0

    async def fetchval(self, query, domain_id):
        return max((r["seq"] for r in self.rows), default=0)

    async def fetch(self, query, domain_id, after, limit):
        self.reads += 1
        return [r for r in self.rows if r["seq"] > after][:limit]

    def add(self, event_type: str, payload: dict, target=None, exclude=None) -> int:
        seq = len(self.rows) + 1
        self.rows.append({"seq": seq, "type": event_type, "target_node_id": target, "exclude_node_id": exclude,
                          "envelope": orjson.dumps({"type": event_type, "payload": payload}).decode()})
        return seq


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_one_read_per_event_for_a_hundred_streams_filtered_in_memory():
    pool, domain = FakePool(), uuid.uuid4()
    hub = Hub(pool)
    node_ids = [uuid.uuid4() for _ in range(100)]
    streams = [(await hub.subscribe(n, domain))[0] for n in node_ids]
    await _settle()
    reads_before = pool.reads
    joiner = node_ids[0]
    seq = pool.add("peer_added", {"node_id": str(joiner)}, exclude=joiner)
    hub.on_notify(f"{domain}:{seq}")
    await _settle()
    assert pool.reads - reads_before == 1
    chunks = [await s.next_chunk(0.01) for s in streams]
    assert chunks[0] is None  # excluded: the joiner itself, nothing pending (idle → keep-alive)
    assert all(c.startswith(b"id: 1\nevent: peer_added\n") for c in chunks[1:])
    # A targeted event reaches only its target.
    seq = pool.add("rotate_keys", {}, target=node_ids[5])
    hub.on_notify(f"{domain}:{seq}")
    await _settle()
    assert (await streams[5].next_chunk(0.01)).startswith(b"id: 2\nevent: rotate_keys")
    assert await streams[6].next_chunk(0.01) is None
    assert hub.stream_count() == 100


async def test_pending_frames_coalesce_into_one_write_and_stale_notifications_are_ignored():
    pool, domain = FakePool(), uuid.uuid4()
    hub = Hub(pool)
    stream, start = await hub.subscribe(uuid.uuid4(), domain)
    await _settle()
    for _ in range(3):
        pool.add("peer_added", {"node_id": str(uuid.uuid4())})
    hub.on_notify(f"{domain}:3")
    await _settle()
    reads = pool.reads
    hub.on_notify(f"{domain}:2")  # already seen: no read
    hub.on_notify("garbage")
    await _settle()
    assert pool.reads == reads
    chunk = await stream.next_chunk(0.01)
    assert chunk.count(b"\n\n") == 3 and chunk.index(b"id: 1") < chunk.index(b"id: 3")


async def test_subscribe_reports_the_start_sequence_and_removal_ends_the_stream():
    pool, domain = FakePool(), uuid.uuid4()
    pool.add("peer_added", {})
    pool.add("peer_added", {})
    hub = Hub(pool)
    me = uuid.uuid4()
    stream, start = await hub.subscribe(me, domain)
    assert start == 2
    seq = pool.add("peer_removed", {"node_id": str(me)})
    hub.on_notify(f"{domain}:{seq}")
    await _settle()
    assert (await stream.next_chunk(0.01)).startswith(b"id: 3\nevent: peer_removed")
    assert stream.ended and await stream.next_chunk(0.01) == b""
    hub.unsubscribe(stream)
    assert hub.stream_count() == 0


async def test_a_stuck_stream_is_ended_instead_of_buffering_without_bound():
    stream = Stream(uuid.uuid4(), uuid.uuid4())
    frame = b"x" * 65536
    for _ in range(MAX_PENDING_BYTES // len(frame) + 2):
        stream.push(frame)
    assert stream.ended and await stream.next_chunk(0.01) == b""


async def test_idle_stream_times_out_for_a_keep_alive():
    stream = Stream(uuid.uuid4(), uuid.uuid4())
    assert await stream.next_chunk(0.02) is None
