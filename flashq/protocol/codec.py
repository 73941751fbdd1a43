"""Low-level JSON / MessagePack codecs and the wire texts of parse errors.

Shared by the frame decoder, the reply encoders and whoever turns a `ProtocolError` into an
error reply: the two connection modes differ only in the prefix of that text (PROTOCOL.md §1.5)
and in how a `reqId` can be dug out of bytes that did not decode (§1.6 ★).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any, Final, Literal

import msgpack
import orjson

Mode = Literal["json", "msgpack"]

JSON_ERROR_PREFIX: Final = "Invalid: "
MSGPACK_ERROR_PREFIX: Final = "MessagePack deserialize error: "
MESSAGE_TOO_LARGE: Final = "Message too large"

# A reqId is recovered only when it is a plain string without escapes: anything fancier is not
# worth a real parser on the error path, and a wrong guess would misroute the reply.
_JSON_REQ_ID = re.compile(rb'"reqId"\s*:\s*"([^"\\]*)"')

# Every exception msgpack's C decoder raises for bad input (ExtraData, FormatError, StackError,
# UnicodeDecodeError ... are ValueErrors; OutOfData is an UnpackException).
MSGPACK_ERRORS: Final = (ValueError, TypeError, OverflowError, msgpack.UnpackException)


def parse_error_text(mode: Mode, diag: str) -> str:
    """The error text a connection in `mode` replies for an unparsable request.

    Text mode says `Invalid: <diag>`, binary mode `MessagePack deserialize error: <diag>`,
    as upstream does (the SDKs classify both as validation errors).
    """
    prefix = JSON_ERROR_PREFIX if mode == "json" else MSGPACK_ERROR_PREFIX
    return prefix + diag


def request_id(obj: Mapping[str, Any]) -> str | None:
    """The `reqId` to echo for a decoded request, or None.

    Only a string is echoed: upstream refuses a numeric `reqId`, and echoing a value of
    another type would confuse SDKs that match replies by string.
    """
    rid = obj.get("reqId")
    return rid if type(rid) is str else None


def recover_req_id(mode: Mode, raw: bytes | bytearray | memoryview) -> str | None:
    """Best-effort `reqId` of a request whose bytes did not decode (PROTOCOL.md §1.6 ★)."""
    if mode == "json":
        return recover_json_req_id(raw)
    return recover_msgpack_req_id(raw)


def recover_json_req_id(raw: bytes | bytearray | memoryview) -> str | None:
    """Find `"reqId": "<string>"` in undecodable JSON text (first match wins)."""
    match = _JSON_REQ_ID.search(raw)
    if match is None:
        return None
    try:
        return match.group(1).decode("utf-8")
    except UnicodeDecodeError:
        return None


def recover_msgpack_req_id(raw: bytes | bytearray | memoryview) -> str | None:
    """Walk the top-level map of an undecodable MessagePack body looking for `reqId`.

    Values before `reqId` are skipped without being decoded, so the usual culprits (invalid
    UTF-8 or an ext type somewhere inside `data`) do not prevent the recovery.
    """
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(raw)
    try:
        for _ in range(unpacker.read_map_header()):
            if unpacker.unpack() == "reqId":
                value = unpacker.unpack()
                return value if type(value) is str else None
            unpacker.skip()
    except MSGPACK_ERRORS:
        return None
    return None


def reject_ext(code: int, data: bytes) -> Any:
    """ext_hook refusing application ext types (upstream accepts none; timestamps are decoded)."""
    raise ValueError(f"unsupported MessagePack ext type {code}")


def unpack_msgpack(body: bytes | bytearray | memoryview) -> Any:
    """Decode one MessagePack value: str keys, UTF-8 strings, timestamps as aware datetimes.

    Raises one of MSGPACK_ERRORS on bad input, including trailing bytes after the value.
    """
    return msgpack.unpackb(body, raw=False, ext_hook=reject_ext, timestamp=3)


def json_default(obj: Any) -> Any:
    """orjson fallback for the few non-JSON values a MessagePack client can send."""
    if isinstance(obj, bytes | bytearray | memoryview):
        # `bin` values: rendered as text so a JSON client can still read the job.
        return bytes(obj).decode("utf-8", "replace")
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _json_safe(obj: Any) -> Any:
    """Deep copy of `obj` with non-str keys stringified; the slow path of dumps_json."""
    if isinstance(obj, Mapping):
        return {_json_key(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bytes | bytearray):
        return key.decode("utf-8", "replace")
    return str(key)


def dumps_json(obj: Any, *, newline: bool = False) -> bytes:
    """Compact JSON of `obj` via orjson; never fails for a value that came off the wire.

    MessagePack lets a client send `bin` values and bytes map keys, which JSON cannot carry:
    the first is handled by `json_default`, the second by a slow retry that stringifies keys.
    """
    option = orjson.OPT_APPEND_NEWLINE if newline else 0
    try:
        return orjson.dumps(obj, default=json_default, option=option)
    except orjson.JSONEncodeError:
        return orjson.dumps(_json_safe(obj), default=json_default, option=option)


_packers = threading.local()


def pack_msgpack(obj: Any) -> bytes:
    """MessagePack of `obj` (smallest ints, float64, bin for bytes, datetimes as timestamps).

    A Packer is reused per thread: about 40% cheaper than `msgpack.packb`, and a Packer is
    not safe to share between threads.
    """
    try:
        packer: msgpack.Packer = _packers.packer
    except AttributeError:
        packer = _packers.packer = msgpack.Packer(datetime=True)
    return packer.pack(obj)  # type: ignore[no-any-return]
