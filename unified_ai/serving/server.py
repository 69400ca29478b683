"""The HTTP server settings that keep slow or numerous clients from holding the service.

uvicorn cuts idle keep-alive connections, but not a client that sends half a request line or
half its headers and then waits (slowloris): such a connection is held for as long as the
client likes. The protocol here closes a connection whose request headers have not all arrived
within `header_seconds` (from the connection, or from the end of the previous response), caps
the bytes of a request's headers, and refuses connections beyond `max_connections` with 503
and `Retry-After`. The body's own deadline is the app's (`read_body`), which answers 400.
"""

import asyncio
from typing import Any

#: Sent to a connection over the cap, before closing it.
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: application/json\r\n"
    b"retry-after: 1\r\n"
    b"connection: close\r\n"
    b"content-length: %d\r\n\r\n%s"
)
_BUSY_BODY = b'{"detail":"too many open connections; retry"}'
#: How long a connection over the cap stays open after its 503 (for the client to read it).
LINGER_SECONDS = 1.0
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/json\r\n"
    b"connection: close\r\n"
    b"content-length: %d\r\n\r\n%s"
)


def _base_protocol() -> type:
    """The fastest installed uvicorn HTTP/1.1 protocol (httptools, else h11), as `auto` picks."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is not installed
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    return HttpToolsProtocol


def guarded_protocol(
    *, header_seconds: float, max_header_bytes: int, max_connections: int
) -> type[asyncio.Protocol]:
    """A uvicorn HTTP protocol class with a header deadline, a header size cap and a connection cap.

    Args:
        header_seconds: Longest wait for a request's headers to arrive in full.
        max_header_bytes: Most bytes of a request line and headers.
        max_connections: Most connections open at once; more are answered 503 and closed.
    """
    base: Any = _base_protocol()

    class GuardedProtocol(base):
        _header_timer: asyncio.TimerHandle | None = None
        _header_bytes = 0
        _over_cap = False

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                # Answered at once and closed a moment later; what the client sends meanwhile
                # is read and discarded, so the close resets nothing it has still to read.
                self._over_cap = True
                self.connections.discard(self)
                transport.write(_BUSY % (len(_BUSY_BODY), _BUSY_BODY))
                self.loop.call_later(LINGER_SECONDS, transport.close)
                return
            self._arm()

        def eof_received(self) -> None:
            if self._over_cap:
                self.transport.close()
                return
            super().eof_received()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._over_cap:
                return
            waiting = self._waiting_for_headers()
            super().data_received(data)
            if not waiting or not self._waiting_for_headers():
                self._header_bytes = 0  # a request started: its headers were complete
                return
            self._header_bytes += len(data)
            if self._header_bytes > max_header_bytes and not self.transport.is_closing():
                body = b'{"detail":"request headers are more than %d bytes"}' % max_header_bytes
                self.transport.write(_TOO_LARGE % (len(body), body))
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._header_bytes = 0
                self._arm()  # the next request's headers have the same deadline

        def _waiting_for_headers(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_seconds, self._headers_late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            # A request being handled (or its body being read) is the app's to time.
            if self._waiting_for_headers() and not self.transport.is_closing():
                self.transport.close()

    return GuardedProtocol


def server_config(
    app: Any,
    *,
    host: str,
    port: int,
    log_level: str = "info",
    header_seconds: float = 5.0,
    max_header_bytes: int = 64 * 1024,
    keep_alive_seconds: float = 5.0,
    max_connections: int = 1000,
    graceful_seconds: float = 30.0,
) -> Any:
    """The uvicorn `Config` of the service (also used by tests, so they run what `serve` runs)."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=guarded_protocol(
            header_seconds=header_seconds,
            max_header_bytes=max_header_bytes,
            max_connections=max_connections,
        ),
        **server_settings(
            max_header_bytes=max_header_bytes,
            keep_alive_seconds=keep_alive_seconds,
            graceful_seconds=graceful_seconds,
        ),
    )


def server_settings(
    *, max_header_bytes: int, keep_alive_seconds: float, graceful_seconds: float
) -> dict[str, Any]:
    """The uvicorn `Config` settings of the service besides its app, address and protocol."""
    return {
        # uvicorn annotates both as int but uses them as asyncio timeouts: fractions work.
        "timeout_keep_alive": keep_alive_seconds,
        "timeout_graceful_shutdown": graceful_seconds,
        "h11_max_incomplete_event_size": max_header_bytes,
        "lifespan": "on",
    }
