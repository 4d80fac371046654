"""A stream's wait for its next chunk costs no Task of its own (asyncio.wait_for on 3.11 made one
per stream per wake), and several frames pushed before the stream runs leave as ONE chunk."""

from __future__ import annotations

import asyncio
import uuid

import orjson

from plexsphere.domain.events import concerns, sse_frame
from plexsphere.server.sse import Hub, Stream


async def test_waiting_streams_add_no_tasks_and_one_push_wakes_each_once():
    streams = [Stream(uuid.uuid4(), uuid.uuid4()) for _ in range(500)]
    readers = [asyncio.create_task(s.next_chunk(30)) for s in streams]
    await asyncio.sleep(0)
    # Only the readers themselves (and this test's task) exist while they wait.
    assert len(asyncio.all_tasks()) == len(readers) + 1
    for s in streams:
        s.push(b"id: 1\n\n")
        s.push(b"id: 2\n\n")
    chunks = await asyncio.gather(*readers)
    assert chunks == [b"id: 1\n\nid: 2\n\n"] * len(streams)


async def test_silence_returns_none_after_the_idle_time_then_frames_still_arrive():
    stream = Stream(uuid.uuid4(), uuid.uuid4())
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await stream.next_chunk(0.05) is None
    assert loop.time() - started >= 0.05
    stream.push(b"x")
    assert await stream.next_chunk(5) == b"x"


async def test_end_wakes_a_waiting_stream_with_an_empty_chunk():
    stream = Stream(uuid.uuid4(), uuid.uuid4())
    reader = asyncio.create_task(stream.next_chunk(30))
    await asyncio.sleep(0)
    stream.end()
    assert await asyncio.wait_for(reader, 1) == b""
    assert stream.ended


async def test_a_cancelled_reader_leaves_the_stream_usable():
    stream = Stream(uuid.uuid4(), uuid.uuid4())
    reader = asyncio.create_task(stream.next_chunk(30))
    await asyncio.sleep(0)
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    stream.push(b"y")  # must not touch the cancelled waiter
    assert await stream.next_chunk(1) == b"y"


class _Rows:
    """Serves `events` rows to the hub (its two queries), as PostgreSQL would."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    async def fetchval(self, query, domain_id):
        return max((r["seq"] for r in self.rows), default=0)

    async def fetch(self, query, domain_id, after, limit):
        return [r for r in self.rows if r["seq"] > after][:limit]

    def add(self, event_type: str, payload: dict, target=None, exclude=None) -> None:
        self.rows.append({"seq": len(self.rows) + 1, "type": event_type, "target_node_id": target,
                          "exclude_node_id": exclude,
                          "envelope": orjson.dumps({"type": event_type, "payload": payload}).decode()})


async def test_one_read_of_many_events_is_one_correctly_filtered_chunk_per_stream():
    rows, domain = _Rows(), uuid.uuid4()
    hub = Hub(rows)
    node_ids = [uuid.uuid4() for _ in range(300)]
    streams = {n: (await hub.subscribe(n, domain))[0] for n in node_ids}
    joiner, target, removed = node_ids[3], node_ids[4], node_ids[5]
    for i in range(40):  # joins of Nodes with no stream here
        rows.add("peer_added", {"node_id": str(uuid.uuid4()), "i": i}, exclude=uuid.uuid4())
    rows.add("peer_added", {"node_id": str(joiner)}, exclude=joiner)
    rows.add("rotate_keys", {}, target=target)
    rows.add("peer_removed", {"node_id": str(removed)})
    rows.add("peer_added", {"node_id": str(uuid.uuid4()), "after": "removal"}, exclude=uuid.uuid4())
    hub.on_notify(f"{domain}:{len(rows.rows)}")
    for _ in range(5):
        await asyncio.sleep(0)

    def expected(node_id: uuid.UUID) -> bytes:
        out = []
        for r in rows.rows:
            if concerns(node_id, r["target_node_id"], r["exclude_node_id"]):
                out.append(sse_frame(r["seq"], r["type"], r["envelope"]))
            if r["type"] == "peer_removed" and node_id == removed:
                break
        return b"".join(out)

    for node_id, stream in streams.items():
        assert stream._pending == [expected(node_id)]  # one chunk, exactly its frames, in order
    assert streams[removed].ended and not streams[node_ids[0]].ended
    assert b"rotate_keys" in expected(target) and b"rotate_keys" not in expected(node_ids[0])
    assert f'"node_id":"{joiner}"'.encode() not in expected(joiner)
    assert b"removal" not in expected(removed)
