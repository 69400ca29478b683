"""One page of pointer moves for `unified-ai history`, and the cursor to the next page.

A page reads only its own moves (plus one per asset to know whether more follow): newest first
it walks each asset's history back from the pointer (`LineageStore.history_entries`), so the
first page costs the same at 10 moves or 10,000. Moves of several assets are merged by time.

The cursor names, per asset, the last entry already shown (`asset:entry`, comma-separated); an
asset it does not name starts at its newest (or, oldest first, its oldest) move. Moves made
after a newest-first page was read appear on the first page again, not on the next.
"""

import heapq
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from unified_ai.io.records import ENTRY, PointerMove
from unified_ai.io.store import LineageStore

DEFAULT_LIMIT = 20
_SUFFIX = ".json"


class CursorError(ValueError):
    """A cursor that `history` did not print (or for other assets)."""


@dataclass(frozen=True)
class HistoryPage:
    """A page of moves, in page order.

    Attributes:
        moves: (asset, entry name, move) of each move shown.
        next_cursor: The cursor of the next page; None when this page is the last.
        newer_than_page: asset -> the move just after the newest of its moves shown (by time,
            in chain order), or None when its newest move is on the page; for the ledger's
            "until".
        newest: asset -> the entry name of its newest move, when the page shows it.
    """

    moves: list[tuple[str, str, PointerMove]]
    next_cursor: str | None
    newer_than_page: dict[str, PointerMove | None]
    newest: dict[str, str]


def parse_cursor(text: str | None, assets: Sequence[str]) -> dict[str, str]:
    """The positions (asset -> entry name) of a cursor `history` printed; CursorError if not."""
    if not text:
        return {}
    positions = {}
    for part in text.split(","):
        asset, _, stem = part.partition(":")
        name = stem + _SUFFIX
        if asset not in assets or not ENTRY.fullmatch(name) or asset in positions:
            raise CursorError(
                f"{text!r} is not a cursor printed by `unified-ai history` for "
                f"{', '.join(assets)} (asset:entry, comma-separated)"
            )
        positions[asset] = name
    return positions


def format_cursor(positions: dict[str, str]) -> str:
    return ",".join(
        f"{asset}:{name.removesuffix(_SUFFIX)}" for asset, name in sorted(positions.items())
    )


def history_page(
    store: LineageStore,
    project: str,
    assets: Sequence[str],
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    oldest_first: bool = False,
    neighbours: Sequence[str] = (),
) -> HistoryPage:
    """The moves of `project`'s `assets` after `cursor`, newest (or oldest) first.

    Args:
        store: The lineage store.
        project: The project.
        assets: The assets whose moves are merged (by time).
        limit: Moves per page; 0 shows every move.
        cursor: The `next_cursor` of the page before; None starts at the newest (oldest) move.
        oldest_first: Page from the oldest move on.
        neighbours: Assets for which `newer_than_page` is looked up.

    Raises:
        CursorError: `cursor` is not one `history` printed for these assets.
        LineageStoreError: a history entry is damaged or the chain is broken.
    """
    positions = parse_cursor(cursor, assets)
    pulled: dict[str, list[tuple[str, PointerMove]]] = {asset: [] for asset in assets}
    sources: dict[str, Iterator[tuple[str, PointerMove]]] = {}
    merged = heapq.merge(
        *(
            _rows(store, project, asset, positions.get(asset), oldest_first, pulled, sources)
            for asset in assets
        ),
        key=lambda row: row[0],
        reverse=not oldest_first,
    )
    taken = list(itertools.islice(merged, limit + 1) if limit else merged)
    shown = taken[:limit] if limit else taken
    following = dict(positions)
    for _, asset, name, _ in shown:
        following[asset] = name
    counts = {asset: sum(1 for row in shown if row[1] == asset) for asset in assets}
    newest: dict[str, str] = {}
    newer: dict[str, PointerMove | None] = {}
    for asset in assets:
        if not counts[asset]:
            continue
        if oldest_first:
            newer[asset] = _after_shown(pulled[asset], sources.get(asset), counts[asset])
            if newer[asset] is None:
                newest[asset] = following[asset]
        else:
            if asset not in positions:
                newest[asset] = pulled[asset][0][0]
            if asset in neighbours:
                newer[asset] = (
                    store.history_entry([project, asset], positions[asset])
                    if asset in positions
                    else None
                )
    return HistoryPage(
        moves=[(asset, name, move) for _, asset, name, move in shown],
        next_cursor=format_cursor(following) if len(taken) > len(shown) else None,
        newer_than_page=newer,
        newest=newest,
    )


def _rows(
    store: LineageStore,
    project: str,
    asset: str,
    position: str | None,
    oldest_first: bool,
    pulled: dict[str, list[tuple[str, PointerMove]]],
    sources: dict[str, Iterator[tuple[str, PointerMove]]],
) -> Iterator[tuple[str, str, str, PointerMove]]:
    """(time, asset, entry name, move) of the asset's moves after `position`, in page order.

    Each move read is kept in `pulled[asset]`, and the entry source in `sources[asset]`, so
    the page can read one move more after the merge has stopped.
    """
    path = [project, asset]
    if oldest_first:
        source = store.history_entries_oldest_first(path, after=position)
    else:
        source = store.history_entries(path, before=position)
    sources[asset] = source
    for name, move in source:
        pulled[asset].append((name, move))
        yield move.at, asset, name, move


def _after_shown(
    pulled: list[tuple[str, PointerMove]],
    source: Iterator[tuple[str, PointerMove]] | None,
    count: int,
) -> PointerMove | None:
    """The asset's move after its last one shown (oldest first), None if there is none."""
    if len(pulled) <= count:
        extra = next(source, None) if source is not None else None
        if extra is None:
            return None
        pulled.append(extra)
    return pulled[count][1]
