"""A stream's wait for its next chunk costs no Task of its own (asyncio.wait_for on 3.11 made one
per stream per wake), and several frames pushed before the stream runs leave as ONE chunk."""

from __future__ import annotations

import asyncio
import uuid

from plexsphere.server.sse import Stream


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
