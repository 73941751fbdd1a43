"""Sans-IO wire protocol shared by the server and the SDK: framing, codecs, commands.

No trio, asyncio or socket import may happen under this package.
"""

from __future__ import annotations

from flashq.protocol.codec import Mode, parse_error_text, recover_req_id, request_id
from flashq.protocol.command_types import Command
from flashq.protocol.commands import (
    ALIASES,
    COMMANDS,
    estimate_json_size,
    normalize,
    validate_job_data,
    validate_queue_name,
)
from flashq.protocol.framing import (
    MAX_FRAME_BYTES,
    Frame,
    FrameDecoder,
    FrameError,
    encode_frame,
    encode_json,
    encode_msgpack_frame,
)

__all__ = [
    "ALIASES",
    "COMMANDS",
    "MAX_FRAME_BYTES",
    "Command",
    "Frame",
    "FrameDecoder",
    "FrameError",
    "Mode",
    "encode_frame",
    "encode_json",
    "encode_msgpack_frame",
    "estimate_json_size",
    "normalize",
    "parse_error_text",
    "recover_req_id",
    "request_id",
    "validate_job_data",
    "validate_queue_name",
]
