"""How many requests are scored at once: `max_concurrent` slots, waited for `queue_seconds`."""

import anyio

from unified_ai.serving.refusal import RETRY, Refusal


class ScoringSlots:
    """At most `max_concurrent` requests scored at once; the rest wait, then get 503.

    `async with slots: ...` holds one slot for the body (a plain async context manager, reused
    by every request: a generator-based one costs microseconds more each time).

    Args:
        project: The project's name (for the refusal).
        max_concurrent: Requests scored at once.
        queue_seconds: How long a request waits for a slot before 503 (0: not at all).
    """

    def __init__(self, project: str, max_concurrent: int, queue_seconds: float):
        self.project = project
        self.max_concurrent = max_concurrent
        self.queue_seconds = queue_seconds
        self._semaphore: anyio.Semaphore | None = None

    def start(self) -> None:
        """Open the slots (in the app's event loop, when it starts)."""
        self._semaphore = anyio.Semaphore(self.max_concurrent)

    async def __aenter__(self) -> None:
        semaphore = self._semaphore
        assert semaphore is not None, "the service is not running (no lifespan)"
        try:
            semaphore.acquire_nowait()  # a free slot is taken even when queue_seconds is 0
            return
        except anyio.WouldBlock:
            pass
        with anyio.move_on_after(self.queue_seconds) as waited:
            await semaphore.acquire()
        if waited.cancelled_caught:
            raise Refusal(
                503,
                "busy",
                f"{self.project}: {self.max_concurrent} requests are being scored and none "
                f"finished within {self.queue_seconds} s; retry",
                headers=RETRY,
            )

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._semaphore is not None
        self._semaphore.release()
