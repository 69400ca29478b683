"""Who may do what on the serving endpoint: a bearer token guards writes.

Labels steer the loop (they become ground truth, which drives retraining and rollback), so
`POST /labels` needs the token `unified-ai serve` reads from `UNIFIED_AI_SERVE_TOKEN`, and so
does `POST /reviews` (reviewers' answers become ground truth too). Without a token configured,
those endpoints are disabled (403) and predictions still work.
Predictions need the token only with `--require-token-for-predict`. Tokens are compared in
constant time; a missing or wrong one gets 401 with `WWW-Authenticate: Bearer`.
"""

import hmac
from collections.abc import Mapping

from unified_ai.runtime import SERVE_TOKEN_ENV
from unified_ai.serving.refusal import Refusal

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="unified-ai"'}


class TokenGuard:
    """Checks the `Authorization: Bearer <token>` header of a request.

    Args:
        token: The token writes need ("" = none configured: writes are disabled).
        require_for_predict: Whether `/predict` needs the token too.
    """

    def __init__(self, token: str, *, require_for_predict: bool = False):
        self._token = token.encode()
        self.require_for_predict = require_for_predict

    @property
    def writes_enabled(self) -> bool:
        return bool(self._token)

    def check_write(self, headers: Mapping[str, str], what: str) -> None:
        """Refuse a write (`what`, e.g. "labels") without the configured token."""
        if not self._token:
            raise Refusal(
                403,
                "forbidden",
                f"{what} are disabled: set {SERVE_TOKEN_ENV} for `unified-ai serve` and send it "
                "as `Authorization: Bearer <token>`",
            )
        self._check(headers, what)

    def check_predict(self, headers: Mapping[str, str]) -> None:
        """Refuse a prediction without the token when predictions require it."""
        if not self.require_for_predict:
            return
        if not self._token:  # `serve` refuses this combination; guard other callers
            raise Refusal(403, "forbidden", f"predictions need {SERVE_TOKEN_ENV}, which is unset")
        self._check(headers, "predictions")

    def _check(self, headers: Mapping[str, str], what: str) -> None:
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise Refusal(
                401,
                "unauthorized",
                f"{what} need a token: send `Authorization: Bearer <token>`",
                headers=_CHALLENGE,
            )
        # Constant time: how much of a guess matched never shows in the answer's timing.
        if not hmac.compare_digest(given.strip().encode(), self._token):
            raise Refusal(
                401,
                "unauthorized",
                f"{what}: the bearer token is not the one this service was given",
                headers={"WWW-Authenticate": 'Bearer realm="unified-ai", error="invalid_token"'},
            )
