"""Reading a request: the JSON body within its size limit and deadline, and its records."""

import asyncio
import json
from typing import Any

import orjson
from fastapi import Request

from unified_ai.serving.limits import require_json
from unified_ai.serving.options import ServeOptions
from unified_ai.serving.refusal import Refusal as _Refusal


async def read_body(request: Request, options: ServeOptions) -> bytes:
    """The body of a JSON request, within the size limit and the body deadline."""
    require_json(request.headers)
    try:
        # asyncio's own deadline: the server runs on asyncio, and anyio's cancel scope costs
        # twice as much on every request.
        async with asyncio.timeout(options.body_seconds):
            return await _read_body(request, options.max_body_bytes)
    except TimeoutError:
        raise _Refusal(
            400,
            "body_timeout",
            f"the request body did not arrive within {options.body_seconds} s",
            headers={"Connection": "close"},
        ) from None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise _Refusal(400, "bad_request", f"Content-Length {declared!r} is not a number")
        if int(declared) > limit:
            raise _Refusal(
                413,
                "too_large",
                f"request body is {int(declared)} bytes, more than the limit of {limit}",
            )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refusal(
                413, "too_large", f"request body is more than the limit of {limit} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def records_of(body: bytes, key: str, max_rows: int) -> list[Any]:
    """The list under `key` of a JSON body (or the body itself when it is a list).

    Parsed by orjson; a body orjson refuses is parsed by the standard library, which accepts a
    little more (`Infinity`, `1e400`, a byte-order mark, UTF-16) and words the refusal, and so
    is a body holding an integer of 19 digits or more (orjson reads an integer beyond 64 bits
    as a float, the standard library as the integer): the values a body means, and what is
    refused, stay the standard library's.
    """
    if _long_integer(body):
        return _records(_standard_json(body), key, max_rows)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = _standard_json(body)
    return _records(data, key, max_rows)


#: Digits as "0", so a run of them is found by a plain substring search.
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
#: A run of 19 digits: every integer of fewer digits fits in 64 bits.
_LONG_RUN = b"0" * 19


def _long_integer(body: bytes) -> bool:
    """Whether `body` may hold an integer literal of 19 digits or more.

    A run of digits after a point, or before a point or an exponent, is a float's (which both
    parsers read alike); a run inside a string only sends the body to the standard library.
    """
    masked = body.translate(_DIGITS)
    start = masked.find(_LONG_RUN)
    while start != -1:
        end = start + len(_LONG_RUN)
        while masked[end : end + 1] == b"0":
            end += 1
        if body[start - 1 : start] != b"." and body[end : end + 1] not in (b".", b"e", b"E"):
            return True
        start = masked.find(_LONG_RUN, end)
    return False


def _standard_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise _Refusal(400, "bad_request", f"request body is not valid JSON ({first})") from None


def _records(data: Any, key: str, max_rows: int) -> list[Any]:
    if isinstance(data, dict):
        extra = sorted(set(data) - {key})
        if extra or key not in data:
            raise _Refusal(
                422,
                "invalid_rows",
                f"the body must be {{{key!r}: [...]}} or a list; "
                + (f"unknown field(s) {extra}" if extra else f"{key!r} is missing"),
            )
        data = data[key]
    if not isinstance(data, list):
        raise _Refusal(422, "invalid_rows", f"{key!r} must be a list of objects")
    if not data:
        raise _Refusal(422, "invalid_rows", f"{key!r} is empty: nothing to do")
    if len(data) > max_rows:
        raise _Refusal(
            413,
            "too_large",
            f"{len(data)} {key} in one request, more than the limit of {max_rows}; "
            "split the request",
        )
    return data
