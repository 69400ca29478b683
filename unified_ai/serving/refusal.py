"""An answer other than 200, raised anywhere in the service and answered by the app."""

from collections.abc import Mapping
from typing import Any

#: Sent with every 503 and 429: when to try again (seconds).
RETRY = {"Retry-After": "1"}


class Refusal(Exception):
    """An answer other than 200, with a one-line reason.

    Attributes:
        status: The HTTP status code.
        reason: The `reason` label of the errors metric (a short word).
        detail: One line: what was refused and why.
        problems: Per-row problems (for 422), listed in the answer.
        headers: Extra response headers (`Retry-After`, `WWW-Authenticate`, ...).
    """

    def __init__(
        self,
        status: int,
        reason: str,
        detail: str,
        problems: list[Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.problems = problems or []
        self.headers = dict(headers or {})
