"""Frames between the server and a replica, over the replica's stdin and stdout pipes.

Pipes pass through the sandbox as they are and close when either side dies, which is how each
side learns the other is gone. A request is a header (request id, payload length, how many
requests the server has in flight to that replica) and the image bytes; an answer is a header
(request id, length) and JSON. Id 0 is the replica's own: its ready (or failed) message.
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

__all__ = [
    "ANSWER",
    "CONTROL_ID",
    "REQUEST",
    "read_answer",
    "read_request",
    "write_answer",
    "write_request",
]

REQUEST = struct.Struct(">QIH")  # id, payload bytes, requests in flight to this replica
ANSWER = struct.Struct(">QI")  # id, JSON bytes
CONTROL_ID = 0
MAX_INFLIGHT_FIELD = 0xFFFF


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    """`n` bytes, or None at the end of the stream (the other side is gone)."""
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def write_request(stream: BinaryIO, request_id: int, payload: bytes, inflight: int) -> None:
    stream.write(REQUEST.pack(request_id, len(payload), min(inflight, MAX_INFLIGHT_FIELD)))
    stream.write(payload)
    stream.flush()


def read_request(stream: BinaryIO) -> tuple[int, bytes, int] | None:
    header = _read_exact(stream, REQUEST.size)
    if header is None:
        return None
    request_id, length, inflight = REQUEST.unpack(header)
    payload = _read_exact(stream, length)
    return None if payload is None else (request_id, payload, inflight)


def write_answer(stream: BinaryIO, request_id: int, answer: dict[str, Any]) -> None:
    data = json.dumps(answer, separators=(",", ":")).encode()
    stream.write(ANSWER.pack(request_id, len(data)) + data)
    stream.flush()


def read_answer(stream: BinaryIO) -> tuple[int, dict[str, Any]] | None:
    header = _read_exact(stream, ANSWER.size)
    if header is None:
        return None
    request_id, length = ANSWER.unpack(header)
    data = _read_exact(stream, length)
    return None if data is None else (request_id, json.loads(data))
