"""The per-process SSE hub (API hook): one subscriber of EVENTS_CHANNEL fanning a Domain's new
events out to every local stream they concern.

On `NOTIFY plexsphere_events '<domain>:<seq>'` the hub reads that Domain's new rows ONCE (seq >
the last it saw; appends hold a per-Domain lock to commit, so seq order is commit order and nothing
is skipped), encodes each frame once, and appends the bytes to the pending buffer of every stream
of the Domain the event concerns (filtered in memory). A stream writes everything pending in one
chunk. The cost of an event is one query and one encode per process, whatever the number of
streams; a stream that falls too far behind is closed and resumes with Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import uuid
from dataclasses import dataclass, field

import asyncpg
import orjson

from plexsphere.domain.events import concerns, ends_stream_of, sse_frame
from plexsphere.server.notify import EVENTS_CHANNEL
from plexsphere.server.runtime import Runtime
from plexsphere.services import events

log = logging.getLogger(__name__)

HUB = "sse_hub"
MAX_PENDING_BYTES = 4 * 1024 * 1024


class Stream:
    """One open event stream of one Node in this process."""

    def __init__(self, node_id: uuid.UUID, domain_id: uuid.UUID) -> None:
        self.node_id = node_id
        self.domain_id = domain_id
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        # A bare future per wait instead of Event + wait_for: on 3.11 wait_for wraps the wait in a
        # Task, and with thousands of streams that Task per stream per event was the fan-out's cost.
        self._waiter: asyncio.Future[None] | None = None
        self.ended = False  # no more frames will come (removed Node, overflow, shutdown)

    def push(self, frame: bytes) -> None:
        if self.ended:
            return
        self._pending.append(frame)
        self._pending_bytes += len(frame)
        if self._pending_bytes > MAX_PENDING_BYTES:  # a stuck reader must not hold memory unbounded
            self._pending.clear()
            self.ended = True
        self._wake()

    def end(self) -> None:
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next_chunk(self, idle_s: float) -> bytes | None:
        """Everything pending as one chunk; b"" once ended and drained; None after `idle_s` of silence."""
        if not self._pending and not self.ended:
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            self._waiter = waiter
            timer = loop.call_later(idle_s, _expire, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
            if not self._pending and not self.ended:
                return None
        chunk = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        return chunk


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


@dataclass
class _Feed:
    domain_id: uuid.UUID
    last_seq: int = 0
    streams: set[Stream] = field(default_factory=set)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    dirty: bool = False
    task: asyncio.Task | None = None


class Hub:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._feeds: dict[uuid.UUID, _Feed] = {}
        self.fetches = 0  # rows-reading queries issued (observability and tests)

    # -- streams --------------------------------------------------------------------------------
    async def subscribe(self, node_id: uuid.UUID, domain_id: uuid.UUID) -> tuple[Stream, int]:
        """Registers a stream; returns it with the sequence it starts after. Live frames are those
        above that sequence, so a replay of (Last-Event-ID, start] joins them without gap or overlap."""
        feed = self._feeds.get(domain_id)
        if feed is None:
            feed = _Feed(domain_id)
            self._feeds[domain_id] = feed
            try:
                feed.last_seq = await events.latest_seq(self._pool, domain_id)
            except BaseException:
                self._feeds.pop(domain_id, None)
                feed.ready.set()
                raise
            feed.ready.set()
            self._kick(feed)  # notifications that arrived while initialising were ignored
        else:
            await feed.ready.wait()
            if self._feeds.get(domain_id) is not feed:  # initialisation failed; start over
                return await self.subscribe(node_id, domain_id)
        stream = Stream(node_id, domain_id)
        feed.streams.add(stream)
        return stream, feed.last_seq

    def unsubscribe(self, stream: Stream) -> None:
        feed = self._feeds.get(stream.domain_id)
        if feed is None:
            return
        feed.streams.discard(stream)
        if not feed.streams and feed.ready.is_set():
            del self._feeds[stream.domain_id]

    def stream_count(self) -> int:
        return sum(len(f.streams) for f in self._feeds.values())

    # -- notifications --------------------------------------------------------------------------
    def on_notify(self, payload: str) -> None:
        domain_text, _, seq_text = payload.partition(":")
        try:
            domain_id, seq = uuid.UUID(domain_text), int(seq_text)
        except ValueError:
            return
        feed = self._feeds.get(domain_id)
        if feed is None or not feed.ready.is_set() or seq <= feed.last_seq:
            return
        self._kick(feed)

    def on_reconnect(self) -> None:
        for feed in list(self._feeds.values()):  # notifications may have been lost meanwhile
            if feed.ready.is_set():
                self._kick(feed)

    def _kick(self, feed: _Feed) -> None:
        feed.dirty = True
        if feed.task is None or feed.task.done():
            feed.task = asyncio.create_task(self._pump(feed), name=f"sse-feed-{feed.domain_id}")

    async def _pump(self, feed: _Feed) -> None:
        while feed.dirty:
            feed.dirty = False
            try:
                while True:
                    self.fetches += 1
                    rows = await events.read_after(self._pool, feed.domain_id, feed.last_seq)
                    self._deliver(feed, rows)
                    if len(rows) < events.READ_BATCH:
                        break
            except Exception:
                log.exception("reading events of domain %s failed; retrying", feed.domain_id)
                feed.dirty = True
                await asyncio.sleep(1.0)

    @staticmethod
    def _deliver(feed: _Feed, rows: list[asyncpg.Record]) -> None:
        """Pushes one read's frames: ONE chunk per stream per read, whatever the number of rows.
        Most streams get the same bytes (the frames for every Node, encoded and joined once); only
        the streams of Nodes an event targets, excludes or ends are filtered row by row."""
        if not rows:
            return
        frames: list[tuple[bytes, uuid.UUID | None, uuid.UUID | None, uuid.UUID | None]] = []
        special: set[uuid.UUID] = set()
        for row in rows:
            frame = sse_frame(row["seq"], row["type"], row["envelope"])
            ending = None
            if row["type"] == "peer_removed":
                ending = ends_stream_of(row["type"], orjson.loads(row["envelope"]).get("payload") or {})
            target, exclude = row["target_node_id"], row["exclude_node_id"]
            special.update(n for n in (target, exclude, ending) if n is not None)
            frames.append((frame, target, exclude, ending))
        common = b"".join(frame for frame, target, _, _ in frames if target is None)
        for stream in feed.streams:
            if stream.node_id not in special:
                if common:
                    stream.push(common)
                continue
            own: list[bytes] = []
            ends = False
            for frame, target, exclude, ending in frames:
                if concerns(stream.node_id, target, exclude):
                    own.append(frame)
                if ending == stream.node_id:  # its own removal is its last frame
                    ends = True
                    break
            if own:
                stream.push(b"".join(own))
            if ends:
                stream.end()
        feed.last_seq = rows[-1]["seq"]

    def close_all(self) -> None:
        for feed in self._feeds.values():
            for stream in feed.streams:
                stream.end()


def hub_of(runtime: Runtime) -> Hub:
    return runtime.extras[HUB]


async def start(runtime: Runtime) -> None:
    hub = Hub(runtime.pool)
    runtime.extras[HUB] = hub
    runtime.notifier.subscribe(EVENTS_CHANNEL, hub.on_notify)
    runtime.notifier.on_reconnect(hub.on_reconnect)
    _end_streams_on_termination(hub)


def _end_streams_on_termination(hub: Hub) -> None:
    """Open streams never finish on their own, and the server only runs its shutdown hooks after
    every response has finished — so without this a stop waits out the graceful-shutdown timeout.
    Chain onto the server's SIGTERM/SIGINT handler: end every stream (clients reconnect elsewhere
    with Last-Event-ID), then let the server stop as it would."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: object, previous=previous) -> None:
            loop.call_soon_threadsafe(hub.close_all)
            previous(signum, frame)

        signal.signal(sig, handler)


async def stop(runtime: Runtime) -> None:
    hub = runtime.extras.get(HUB)
    if hub is not None:
        hub.close_all()
