"""Reading a request: the JSON body within its size limit and deadline, and its records."""

import json
from typing import Any

import anyio
from fastapi import Request

from unified_ai.serving.limits import require_json
from unified_ai.serving.options import ServeOptions
from unified_ai.serving.refusal import Refusal as _Refusal


async def read_body(request: Request, options: ServeOptions) -> bytes:
    """The body of a JSON request, within the size limit and the body deadline."""
    require_json(request.headers)
    try:
        with anyio.fail_after(options.body_seconds):
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
    """The list under `key` of a JSON body (or the body itself when it is a list)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise _Refusal(400, "bad_request", f"request body is not valid JSON ({first})") from None
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
