"""Coalesce many small writes into one `send_all`: the writer side of every stream we own.

Producers append bytes without blocking (a reply callback, a link request); one writer task
per stream sends whatever accumulated since its last write in a single syscall, so a burst
of pipelined replies costs one write, not one per reply.
"""

from __future__ import annotations

import os

import trio


class WriteBuffer:
    def __init__(self) -> None:
        self._data = bytearray()
        self._have_data = trio.Event()
        self._drained = trio.Event()
        self.writing = False
        #: The socket's descriptor while `run` serves it, for writes that skip the task hop.
        self._fd = -1

    def append(self, data: bytes) -> None:
        if self._fd >= 0 and not self._data and not self.writing:
            # Nothing queued and no send in progress: write now, as asyncio's transports do,
            # instead of waking the writer task (one task switch less per reply). The socket
            # is non-blocking; whatever does not fit goes to the writer as usual.
            try:
                sent = os.write(self._fd, data)
            except BlockingIOError:
                sent = 0
            except OSError:
                sent = 0  # the writer's send_all reports the broken connection
            if sent == len(data):
                return
            data = data[sent:]
        self._data += data
        self._have_data.set()

    def reset(self, data: bytes = b"") -> None:
        self._data = bytearray(data)
        if data:
            self._have_data.set()

    def poke(self) -> None:
        """Wake the writer (and so `wait_drained` callers) even with nothing to write."""
        self._have_data.set()

    def __len__(self) -> int:
        return len(self._data)

    @property
    def busy(self) -> bool:
        return bool(self._data) or self.writing

    async def wait_drained(self) -> None:
        """Return after the writer's next pass (used for backpressure and final flushes)."""
        self._drained = trio.Event()
        await self._drained.wait()

    async def run(self, stream: trio.abc.SendStream) -> None:
        """Write forever; raises trio.BrokenResourceError/ClosedResourceError when the peer goes."""
        sock = getattr(stream, "socket", None)
        self._fd = sock.fileno() if sock is not None else -1
        try:
            await self._run(stream)
        finally:
            self._fd = -1

    async def _run(self, stream: trio.abc.SendStream) -> None:
        while True:
            await self._have_data.wait()
            self._have_data = trio.Event()
            if self._data:
                data, self._data = bytes(self._data), bytearray()
                self.writing = True
                try:
                    await stream.send_all(data)
                finally:
                    self.writing = False
            self._drained.set()
