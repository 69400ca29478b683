"""The quota of a project's inbox folder: its size, and whether a file still fits in it."""

import logging
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unified_ai.serving.metrics import ServingMetrics

log = logging.getLogger("unified_ai.serving")

#: How often the inbox's size is measured again (between, the writer adds what it wrote).
MEASURE_SECONDS = 5.0


class InboxQuota:
    """The inbox quota part of `TrafficWriter`, which sets these attributes when it is made.

    The size is measured (by the writer thread) at most every `MEASURE_SECONDS`; in between,
    what the writer wrote is added to it, so a request never measures the inbox.
    """

    folder: Any
    max_inbox_bytes: int | None
    metrics: "ServingMetrics | None"
    _inbox_bytes: int | None
    _measured: float
    _refused_bytes: int  # size of the last batch that did not fit (0: none)

    def inbox_bytes(self, *, refresh: bool = False) -> int | None:
        """Bytes under the inbox folder (measured at most every few seconds); None if unknown."""
        now = time.monotonic()
        if refresh or now - self._measured >= MEASURE_SECONDS:
            try:
                self.folder.fs.invalidate_cache(self.folder.path)
                if self.folder.exists():
                    size = int(self.folder.fs.du(self.folder.path, total=True))
                else:
                    size = 0
            except Exception as exc:  # an unreadable inbox is reported by the writes
                log.warning("inbox %s: cannot measure its size: %s", self.folder, exc)
                return self._inbox_bytes
            self._inbox_bytes, self._measured = size, now
            if self.metrics is not None:
                self.metrics.inbox_bytes.set(size)
        return self._inbox_bytes

    def has_room(self, size: int = 0) -> bool:
        """Whether `size` more bytes fit in the inbox's quota."""
        if self.max_inbox_bytes is None:
            return True
        used = self.inbox_bytes()
        return used is None or used + size <= self.max_inbox_bytes

    @property
    def inbox_full(self) -> bool:
        """Whether the inbox reached its quota: it is full, or the last batch did not fit."""
        used, quota = self._inbox_bytes, self.max_inbox_bytes
        # As last measured (by the writer thread): never measures on a request's path.
        return quota is not None and used is not None and used + max(1, self._refused_bytes) > quota

    def wrote(self, size: int) -> None:
        """Count `size` bytes written to the inbox since it was last measured."""
        if self._inbox_bytes is not None:
            self._inbox_bytes += size
            if self.metrics is not None:
                self.metrics.inbox_bytes.set(self._inbox_bytes)
