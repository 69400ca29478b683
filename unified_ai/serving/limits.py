"""Bounds on what a client can make the service write: JSON only, bounded text, capped labels.

Everything served is written to the inbox and becomes a batch the loop scores, and every label
becomes ground truth; so what a request may carry is bounded here, in small pieces the app
calls, each refusing in one line.
"""

import math
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from unified_ai.ml.rows import RowProblem
from unified_ai.serving.refusal import Refusal

#: Characters a served string may never hold: C0 controls (NUL among them) and DEL. A batch
#: file holding them is refused by the batch reader, so a served row must never produce one.
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_SHOWN = 40
#: Bytes counted for a value that is not text (a float's longest repr, and a separator).
_NUMBER_BYTES = 25


def require_json(headers: Mapping[str, str]) -> None:
    """Refuse (415) a body that is not declared JSON.

    A browser posts a form or `text/plain` to any site without asking first; JSON needs a
    preflight this service never grants, so a web page cannot write through a user's browser.
    """
    declared = headers.get("content-type", "")
    kind = declared.split(";", 1)[0].strip().lower()
    if kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json")):
        return
    raise Refusal(
        415,
        "unsupported_media_type",
        f"the body must be JSON (Content-Type: application/json), not {declared or 'untyped'}",
    )


def served_text_problems(
    records: Sequence[Mapping[str, Any]],
    text_columns: Iterable[str],
    capped_columns: Iterable[str],
    *,
    max_text_chars: int,
    max_row_bytes: int,
) -> list[RowProblem]:
    """Problems of served values the inbox must never hold.

    Args:
        records: The request's rows (objects, already checked to be).
        text_columns: Columns whose strings are checked for control characters.
        capped_columns: Columns whose strings may hold at most `max_text_chars` characters
            (categoricals without a declared category list).
        max_text_chars: Longest string in a capped column.
        max_row_bytes: Most bytes of all values of a row, as text (what a CSV line holds).
    """
    text = set(text_columns)
    capped = set(capped_columns)
    problems: list[RowProblem] = []
    for index, record in enumerate(records):
        size = 0
        for column, value in record.items():
            if not isinstance(value, str):
                size += _NUMBER_BYTES  # a number, boolean or null as text is at most this long
                continue
            size += (len(value) if value.isascii() else len(value.encode("utf-8", "replace"))) + 1
            if column not in text:
                continue
            if column in capped and len(value) > max_text_chars:
                problems.append(
                    RowProblem(
                        index,
                        column,
                        f"is {len(value)} characters, more than the limit of {max_text_chars}",
                    )
                )
            elif (bad := _CONTROL.search(value)) is not None:
                problems.append(
                    RowProblem(
                        index,
                        column,
                        f"holds the control character {bad.group()!r} ({value[:_SHOWN]!r}), "
                        "which a batch file may not",
                    )
                )
        if size > max_row_bytes:
            problems.append(
                RowProblem(
                    index, "", f"is {size} bytes as text, more than the limit of {max_row_bytes}"
                )
            )
    return problems


def served_text_plainly_fine(
    columns: Mapping[str, Sequence[Any]],
    text_columns: Iterable[str],
    capped_columns: Iterable[str],
    *,
    max_text_chars: int,
    max_row_bytes: int,
) -> bool:
    """Whether `served_text_problems` would find nothing, decided column by column in bulk.

    True only when no text column holds a control character, no capped column a string longer
    than `max_text_chars`, and an upper bound of every row's size (each column's widest value)
    is within `max_row_bytes`; False means "check row by row", not "a problem".

    Args:
        columns: Per column of the request, its values (a missing or empty value as None).
        text_columns: As `served_text_problems` takes them.
        capped_columns: As `served_text_problems` takes them.
        max_text_chars: As `served_text_problems` takes it.
        max_row_bytes: As `served_text_problems` takes it.
    """
    text = set(text_columns)
    capped = set(capped_columns)
    bound = 0
    for column, values in columns.items():
        strings = [v for v in values if type(v) is str]
        widest = _NUMBER_BYTES if len(strings) < len(values) else 0
        if strings:
            joined = "".join(strings)
            longest = max(map(len, strings))
            if column in text and (
                _CONTROL.search(joined) is not None
                or (column in capped and longest > max_text_chars)
            ):
                return False
            # UTF-8 takes at most 4 bytes a character (a lone surrogate is replaced by 1).
            widest = max(widest, longest * (1 if joined.isascii() else 4) + 1)
        bound += widest
    return bound <= max_row_bytes


class LabelRateLimit:
    """Per-minute caps on label rows and label files touched, over a sliding minute.

    Args:
        rows_per_minute: Most label rows accepted within any 60 s.
        files_per_minute: Most label files written within any 60 s.
        clock: Seconds, monotonic (a parameter so the window can be checked without waiting).
    """

    WINDOW = 60.0

    def __init__(self, rows_per_minute: int, files_per_minute: int, clock=time.monotonic):
        self.rows_per_minute = rows_per_minute
        self.files_per_minute = files_per_minute
        self._clock = clock
        self._taken: deque[tuple[float, int, int]] = deque()
        self._lock = threading.Lock()

    def take(self, rows: int, files: int) -> None:
        """Count a request's rows and files, or refuse it (429 with `Retry-After`)."""
        with self._lock:
            now = self._clock()
            while self._taken and self._taken[0][0] <= now - self.WINDOW:
                self._taken.popleft()
            used_rows = sum(r for _, r, _ in self._taken)
            used_files = sum(f for _, _, f in self._taken)
            over = []
            if used_rows + rows > self.rows_per_minute:
                over.append(f"{used_rows + rows} label rows (limit {self.rows_per_minute})")
            if used_files + files > self.files_per_minute:
                over.append(f"{used_files + files} label files (limit {self.files_per_minute})")
            if over:
                # The soonest a slot frees: when the oldest counted request leaves the window.
                wait = self._taken[0][0] + self.WINDOW - now if self._taken else self.WINDOW
                raise Refusal(
                    429,
                    "rate_limited",
                    f"labels: {' and '.join(over)} within a minute; retry later",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
            self._taken.append((now, rows, files))
