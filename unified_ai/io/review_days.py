"""How many items the batch path routed each UTC day, per batch: the count the daily cap needs.

One small record per project and day, `<project>/review_routed/<YYYY-MM-DD>`: a JSON object
`{batch: items routed}`. Finding what other batches routed earlier that day is one pointer read
and one value, however many batches the day has seen (counting the queue's materializations
instead grew with them).

Recording is compare and set: the new version is made current only if nobody moved the pointer
since it was read (`set_current(only_if_previous=...)`), else the batch reads the count again and
is routed again with it. Concurrent runs therefore never lose one another's counts, and never
route past the cap together. A batch routed again replaces its own count. Pure: no Dagster
import.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TypeVar

from unified_ai.io.json_records import put_record
from unified_ai.io.store import LineageStore, LineageStoreError, PointerConflict
from unified_ai.projects.schema import ProjectConfig

#: Where the per-day counts are kept: `<project>/review_routed/<YYYY-MM-DD>`.
REVIEW_ROUTED = "review_routed"
#: The pointer action of a recorded count.
COUNT_ACTION = "count_routed"
#: Reads and routings a batch tries before giving up, when other runs keep moving the count.
ATTEMPTS = 20

Routed = TypeVar("Routed")


@dataclass(frozen=True)
class RoutedDay:
    """One day's counts as read: the version they were read at (None: none recorded yet)."""

    day: str
    version: str | None
    counts: Mapping[str, int] = field(default_factory=dict)

    def earlier(self, batch: str) -> int:
        """Items the other batches routed that day (`batch`'s own earlier count left out)."""
        return sum(count for name, count in self.counts.items() if name != batch)


def day_path(project: str, day: str) -> list[str]:
    return [project, REVIEW_ROUTED, day]


def utc_day(now: datetime) -> str:
    return now.astimezone(timezone.utc).date().isoformat()


def routed_day(store: LineageStore, project: str, day: str) -> RoutedDay:
    """The day's recorded counts (one pointer read and, once recorded, one value)."""
    path = day_path(project, day)
    version = store.current_version(path)
    if version is None:
        return RoutedDay(day, None)
    value = store.read_value(path, version)
    if not isinstance(value, dict) or not all(
        isinstance(count, int) and count >= 0 for count in value.values()
    ):
        raise LineageStoreError(
            f"{'/'.join(path)}@{version}: not a count of routed items per batch",
            asset="/".join(path),
            version=version,
        )
    return RoutedDay(day, version, {str(name): int(count) for name, count in value.items()})


def record_routed(
    store: LineageStore,
    project: ProjectConfig,
    read: RoutedDay,
    batch: str,
    routed: int,
    *,
    run_id: str | None = None,
) -> None:
    """Record that `batch` routed `routed` items on `read.day`, if the count is still `read`.

    Raises:
        PointerConflict: Another batch recorded its count since `read` was read.
    """
    put_record(
        store,
        project,
        day_path(project.name, read.day),
        {**read.counts, batch: routed},
        action=COUNT_ACTION,
        run_id=run_id,
        reason=f"{batch} routed {routed}",
        only_if_previous=read.version,
    )


def route_counted(
    store: LineageStore,
    project: ProjectConfig,
    batch: str,
    now: datetime,
    route: Callable[[int], Routed],
    count: Callable[[Routed], int],
    *,
    first_of_day: Callable[[], Mapping[str, int]],
    run_id: str | None = None,
) -> tuple[Routed, int]:
    """Route `batch` with the count of items routed earlier that day, and record its own.

    `route` routes the batch given the items other batches routed earlier that day (`now`'s
    UTC day), `count` says how many items a routing routed, and `first_of_day` gives the
    counts per batch a day with no record yet starts from (the days before these records:
    what the queue's materializations say).

    Returns:
        (the routing, the items other batches routed earlier that day).

    Raises:
        LineageStoreError: The count kept moving under other runs for `ATTEMPTS` tries.
    """
    day = utc_day(now)
    for _ in range(ATTEMPTS):
        read = routed_day(store, project.name, day)
        if read.version is None:
            read = RoutedDay(day, None, dict(first_of_day()))
        earlier = read.earlier(batch)
        routing = route(earlier)
        try:
            record_routed(store, project, read, batch, count(routing), run_id=run_id)
        except PointerConflict:
            continue  # another batch recorded first: read its count and route again
        return routing, earlier
    raise LineageStoreError(
        f"{'/'.join(day_path(project.name, day))}: other runs kept recording their routed "
        f"counts; {batch} was not recorded after {ATTEMPTS} tries",
        asset="/".join(day_path(project.name, day)),
    )
