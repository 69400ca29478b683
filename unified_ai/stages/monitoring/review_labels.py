"""The labels sensor's second source: batches with new review answers and no label file.

Answers recorded by people (`unified_ai.io.review_answers`: the command line, the HTTP route,
the launchpad job) are ground truth of their batch, but nothing delivers a file for them. So
on each tick of a project with `policy.review`, the labels sensor lists the batches with
answers and asks for `<project>__ingest_labels` of a batch when its answers moved on:

- the newest answer version is not the one a run was asked for last (the cursor), nor one
  the batch's current ground truth was made from (its manifest's lineage), so a restarted
  sensor or an answer taken in by hand asks for nothing more;
- at least one item is answered as policy asks (a skip or an escalated item is no label);
- no label file of the batch is being taken in: its run joins the answers too.

One run per answer version (its run key). Costs one listing and one pointer read per batch
with answers each tick; the answers themselves are read only for batches that moved on.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

import dagster as dg

from unified_ai.io.reader import StoreReader
from unified_ai.io.review_answers import answered_labels
from unified_ai.io.store import LineageStore
from unified_ai.names import ACTOR_TAG, GROUND_TRUTH, PARTITIONS, REVIEWS
from unified_ai.projects.schema import ProjectConfig

#: The labels sensor's cursor entry: {batch: the answer version a run was last asked for}.
REVIEWS_CURSOR = "reviews"


@dataclass
class ReviewRuns:
    """What one tick found: runs to ask for, and batches with answers that give no label."""

    requests: list[dg.RunRequest] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)


def review_run_key(batch: str, version: str) -> str:
    """The run key of taking in one version of a batch's answers."""
    return f"reviews:{batch}:{version}"


def _answer_batches(store: LineageStore, project: str) -> dict[str, str]:
    """{batch: its current answer version} for every batch with recorded answers."""
    folder = store.asset_dir([project, REVIEWS]) / PARTITIONS
    if not folder.exists():
        return {}
    found = {}
    for batch in store.names(folder):
        if batch.startswith("."):
            continue  # the store's own bookkeeping
        version = store.current_version([project, REVIEWS, PARTITIONS, batch])
        if version is not None:
            found[batch] = version
    return found


def _in_ground_truth(store: LineageStore, project: str, batch: str, version: str) -> bool:
    """Whether the batch's current ground truth was made from this answer version."""
    path = [project, GROUND_TRUTH, PARTITIONS, batch]
    current = store.current_version(path)
    if current is None:
        return False
    used = store.read_manifest(path, current).upstream.get(
        f"{project}/{REVIEWS}/{PARTITIONS}/{batch}"
    )
    return version == used if isinstance(used, str) else version in (used or [])


def review_runs(
    store: LineageStore,
    project: ProjectConfig,
    *,
    seen: dict[str, str],
    covered: Iterable[str],
    cursor: dict,
) -> ReviewRuns:
    """Runs of `<project>__ingest_labels` for batches whose review answers moved on.

    Args:
        store: The lineage store the answers are recorded in.
        project: A project with `policy.review` (without one, nothing is asked for).
        seen: The previous cursor's {batch: answer version asked for}.
        covered: Batches whose label file is being taken in (its run joins the answers).
        cursor: The tick's new cursor; its `REVIEWS_CURSOR` entry is set here.
    """
    found = ReviewRuns()
    if project.policy.review is None:
        return found
    covered = set(covered)
    current = _answer_batches(store, project.name)
    for batch, version in sorted(current.items()):
        if seen.get(batch) == version or batch in covered:
            continue
        if _in_ground_truth(store, project.name, batch, version):
            continue
        if not len(answered_labels(StoreReader(store), project, batch)):
            found.unanswered.append(batch)
            continue
        found.requests.append(
            dg.RunRequest(
                run_key=review_run_key(batch, version),
                partition_key=batch,
                tags={ACTOR_TAG: "labels_sensor"},
            )
        )
    cursor[REVIEWS_CURSOR] = current
    return found
