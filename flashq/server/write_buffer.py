"""Coalesce many small writes into one `send_all`: the writer side of every stream we own.

Producers append bytes without blocking (a reply callback, a link request); one writer task
per stream sends whatever accumulated since its last write in a single syscall, so a burst
of pipelined replies costs one write, not one per reply.
"""

from __future__ import annotations

import os

import trio

from flashq import busypoll

#: Buffers appended to since the last `flush_all`.
_unflushed: set[WriteBuffer] = set()


def flush_all() -> None:
    """Flush every buffer written since the last call: called once per chunk a read loop
    handled, so a burst of pipelined requests or replies still costs one write per socket."""
    while _unflushed:
        _unflushed.pop().flush_now()
    busypoll.kick()


class WriteBuffer:
    def __init__(self) -> None:
        self._data = bytearray()
        self._have_data = trio.Event()
        self._drained = trio.Event()
        self.writing = False
        #: The socket's descriptor while `run` serves it, for writes that skip the task hop.
        self._fd = -1

    def append(self, data: bytes) -> None:
        self._data += data
        self._have_data.set()
        _unflushed.add(self)

    def flush_now(self) -> None:
        """Write what is queued straight to the socket if no send is in progress.

        As asyncio's transports do: the reply leaves in this task step instead of after a
        switch to the writer task. The socket is non-blocking; whatever does not fit stays
        queued for the writer.
        """
        if self._fd < 0 or self.writing or not self._data:
            return
        try:
            sent = os.write(self._fd, self._data)
        except OSError:
            return  # would block, or broken: the writer's send_all deals with it
        del self._data[:sent]

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
