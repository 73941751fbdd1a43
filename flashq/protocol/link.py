"""Framing of the internal links between the acceptor/coordinator and shard processes.

A link message is one MessagePack array; MessagePack is self-delimiting, so a stream of them
needs no length prefix and the C `Unpacker` splits it for us.

Request: ``[link_id, mode, req_id, conn, shard, cmd]`` (see docs/internals.md).
Reply:   ``[link_id, payload]``; ``link_id == 0`` marks an unsolicited message from a shard
process (cross-shard facts in ``{"outbox": [[shard, cmd], ...]}``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import msgpack

#: Reply modes: what the shard process puts in the reply payload.
MODE_OBJECT: Final = 0  # the reply dict itself (for the acceptor to merge)
MODE_JSON: Final = 1  # bytes of a JSON line, reqId included, ready for the client
MODE_MSGPACK: Final = 2  # bytes of a msgpack frame, reqId included

#: The `shard` field value meaning "every logical shard of the receiving process".
ALL_SHARDS: Final = -1

#: Largest single link message; well above the 16 MiB client frame cap plus overhead.
MAX_LINK_MESSAGE: Final = 64 * 1024 * 1024

_packer = msgpack.Packer(use_bin_type=True)


def pack(message: list[Any]) -> bytes:
    return _packer.pack(message)


class LinkDecoder:
    """Incremental decoder for a link stream."""

    def __init__(self) -> None:
        self._unpacker = msgpack.Unpacker(
            raw=False, strict_map_key=False, max_buffer_size=MAX_LINK_MESSAGE
        )

    def feed(self, data: bytes) -> Iterator[list[Any]]:
        self._unpacker.feed(data)
        yield from self._unpacker


def unsolicited(outbox: Sequence[tuple[int, Mapping[str, Any]]]) -> bytes:
    return pack([0, {"outbox": [[s, dict(c)] for s, c in outbox]}])
