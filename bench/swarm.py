"""Thousands of SSE connections from one Python process, cheap enough not to be the bottleneck.

Each connection is a bare asyncio.Protocol: it writes one HTTP/1.1 GET, waits for the response
head, then only scans the incoming bytes for a marker (e.g. b"event: peer_added") and stamps the
moment it first arrives. No HTTP library, no JSON, no signature work on the receive path; when a
scenario needs the frames (to verify and apply them with the agent's code) it turns capture on and
processes the bytes after the clock has stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Target:
    path: str
    headers: dict[str, str]


class StreamConn(asyncio.Protocol):
    def __init__(self, swarm: Swarm, index: int, request: bytes) -> None:
        self.swarm, self.index, self.request = swarm, index, request
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.status: int | None = None
        self.tail = b""
        self.count = 0
        self.done_at: float | None = None
        self.captured: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.status is None:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            try:
                self.status = int(self.head[9:12])
            except ValueError:
                self.status = 0
            data, self.head = self.head[end + 4:], b""
            self.swarm._ready(self)
            if not data:
                return
        now = time.perf_counter()
        swarm = self.swarm
        if swarm.capture:
            self.captured.append(data)
        marker = swarm.marker
        if marker:
            window = self.tail + data
            found = window.count(marker)
            if found:
                self.count += found
                if self.done_at is None and self.count >= swarm.target:
                    self.done_at = now
                    swarm._done(self)
            self.tail = window[-(len(marker) - 1):]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.swarm._lost(self)


class Swarm:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conns: list[StreamConn] = []
        self.marker: bytes | None = None
        self.target = 1
        self.capture = False
        self._all_done = asyncio.Event()
        self._ndone = 0
        self._pending: dict[int, asyncio.Future] = {}
        self.lost = 0

    # -- connecting --------------------------------------------------------------------------------
    async def connect(self, targets: Sequence[Target], concurrency: int = 100, limit_s: float = 300) -> float:
        """Opens one stream per target, at most `concurrency` handshakes in flight; returns seconds
        taken. Raises when any stream is refused."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(concurrency)
        t0 = time.perf_counter()

        async def one(target: Target) -> None:
            async with gate:
                headers = "".join(f"{k}: {v}\r\n" for k, v in target.headers.items())
                request = (f"GET {target.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                           f"Accept: text/event-stream\r\n{headers}\r\n").encode()
                index = len(self.conns)
                future = loop.create_future()
                self._pending[index] = future
                conn = StreamConn(self, index, request)
                self.conns.append(conn)
                await loop.create_connection(lambda: conn, self.host, self.port)
                await asyncio.wait_for(future, 60)
                if conn.status != 200:
                    raise RuntimeError(f"stream {target.path} answered {conn.status}")

        await asyncio.wait_for(asyncio.gather(*(one(t) for t in targets)), limit_s)
        return time.perf_counter() - t0

    def _ready(self, conn: StreamConn) -> None:
        future = self._pending.pop(conn.index, None)
        if future is not None and not future.done():
            future.set_result(None)

    def _lost(self, conn: StreamConn) -> None:
        self.lost += 1
        future = self._pending.pop(conn.index, None)
        if future is not None and not future.done():
            future.set_exception(ConnectionError(f"stream {conn.index} closed before its response head"))

    # -- measuring ---------------------------------------------------------------------------------
    def arm(self, marker: bytes, target: int = 1, capture: bool = False) -> None:
        """Start waiting for `target` occurrences of `marker` on every stream."""
        for conn in self.conns:
            conn.count, conn.done_at, conn.tail = 0, None, b""
            conn.captured = []
        self.marker, self.target, self.capture = marker, target, capture
        self._ndone = 0
        self._all_done = asyncio.Event()

    def _done(self, conn: StreamConn) -> None:
        self._ndone += 1
        if self._ndone >= len(self.conns):
            self._all_done.set()

    async def wait_all(self, limit_s: float) -> bool:
        try:
            await asyncio.wait_for(self._all_done.wait(), limit_s)
            return True
        except TimeoutError:
            return False

    @property
    def done_count(self) -> int:
        return self._ndone

    def arrivals(self, t0: float) -> list[float]:
        """Seconds from t0 to each stream's arrival (streams that never saw it are left out)."""
        return [c.done_at - t0 for c in self.conns if c.done_at is not None]

    def close(self) -> None:
        for conn in self.conns:
            if conn.transport is not None:
                conn.transport.close()


def dechunk(raw: bytes) -> bytes:
    """The body of an HTTP/1.1 chunked stream (ignores a trailing partial chunk)."""
    out, pos = bytearray(), 0
    while True:
        end = raw.find(b"\r\n", pos)
        if end < 0:
            break
        size = int(raw[pos:end].split(b";", 1)[0] or b"0", 16)
        if size == 0 or end + 2 + size > len(raw):
            break
        out += raw[end + 2:end + 2 + size]
        pos = end + 2 + size + 2
    return bytes(out)
