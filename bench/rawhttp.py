"""A minimal keep-alive HTTP/1.1 client for load generation. httpx spends a few hundred
microseconds of client CPU per request; on a 2-core machine shared with the server that would be
measured as server slowness. This one writes the request bytes and reads Content-Length or
chunked bodies, nothing else."""

from __future__ import annotations

import asyncio
import time

import orjson


class HttpError(Exception):
    pass


class Response:
    __slots__ = ("status", "headers", "body", "first_byte", "last_byte")

    def __init__(self, status: int, headers: dict[str, str], body: bytes, first_byte: float, last_byte: float) -> None:
        self.status, self.headers, self.body = status, headers, body
        self.first_byte, self.last_byte = first_byte, last_byte

    def json(self):
        return orjson.loads(self.body)


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                      json: object = None, body: bytes | None = None, keep_body: bool = True) -> Response:
        """Sends one request (reconnecting if the server closed the connection) and reads the whole
        response. With keep_body=False the body is counted, not kept (len(body) is still right)."""
        if json is not None:
            body = orjson.dumps(json)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if body is not None:
            lines.append("Content-Type: application/json")
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        for attempt in (1, 2):
            if self.writer is None:
                await self._open()
            try:
                self.writer.write(head + (body or b""))
                return await self._read(keep_body)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _read(self, keep_body: bool) -> Response:
        reader = self.reader
        assert reader is not None
        status_line = await reader.readuntil(b"\r\n")
        first_byte = time.perf_counter()
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while True:
            line = await reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        parts: list[bytes] = []
        size = 0
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                length = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
                if length == 0:
                    await reader.readuntil(b"\r\n")
                    break
                chunk = await reader.readexactly(length + 2)
                size += length
                if keep_body:
                    parts.append(chunk[:-2])
        elif "content-length" in headers:
            remaining = int(headers["content-length"])
            while remaining:
                chunk = await reader.read(min(remaining, 1 << 20))
                if not chunk:
                    raise asyncio.IncompleteReadError(b"", remaining)
                remaining -= len(chunk)
                size += len(chunk)
                if keep_body:
                    parts.append(chunk)
        last_byte = time.perf_counter()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        body = b"".join(parts) if keep_body else _Sized(size)
        return Response(status, headers, body, first_byte, last_byte)


class _Sized(bytes):
    """An empty body that remembers how many bytes were discarded."""

    def __new__(cls, size: int) -> _Sized:
        obj = super().__new__(cls, b"")
        obj.size = size  # type: ignore[attr-defined]
        return obj

    def __len__(self) -> int:
        return self.size  # type: ignore[attr-defined]
