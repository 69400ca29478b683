"""Review routing of a batch given in chunks, in bounded memory, with `route_batch`'s result.

Every routing rule but the cap and the quotas is a rule about one row (its score, its
shadow's, its inputs, its seeded audit draw), and the cap and the quotas only rank and cut the
rows those rules flagged: the other rows never enter the order. So a batch read chunk by chunk
is routed by keeping, chunk by chunk, the rows any per-row rule flags (a few percent), and
then routing those rows once, whole, with the cap and the quotas: the same rows, reasons,
counts and order as `route_batch` on the whole frame. Pure: no Dagster import.
"""

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from unified_ai.names import ROW_ID
from unified_ai.policies.review import (
    Routing,
    TrainingProfile,
    beyond_training_rows,
    flagged_rows,
    route_batch,
)

if TYPE_CHECKING:
    import pandas as pd

Chunks = Callable[[], Iterable["pd.DataFrame"]]


def route_chunks(
    predictions: Chunks,
    *,
    inputs: Chunks | None = None,
    profile: TrainingProfile | None = None,
    **routing: Any,
) -> Routing:
    """`route_batch` of a batch whose predictions (and inputs) are read in chunks.

    Args:
        predictions: Gives the batch's `predictions` frame in chunks (called twice at most).
        inputs: Gives the batch's input rows in chunks (called twice); needed by
            `out_of_range` only, as `route_batch`'s `inputs`.
        profile: What the model was trained on; needed by `out_of_range` only.
        routing: `route_batch`'s other keywords (`review`, `project`, `task`, `batch`, `now`,
            ...), passed unchanged to the final routing.

    Raises:
        ValueError: as `route_batch`.
    """
    import pandas as pd

    review = routing["review"]
    by_inputs = pd.Index([])
    if review.out_of_range:
        if inputs is None or profile is None:
            raise ValueError("review routing: out_of_range needs the batch's inputs and profile")
        found = [chunk[ROW_ID][beyond_training_rows(chunk, profile)] for chunk in inputs()]
        by_inputs = pd.Index(pd.concat(found, ignore_index=True) if found else [])
    rules = {
        "review": review,
        "task": routing["task"],
        "batch": routing["batch"],
        "threshold": routing.get("threshold", 0.5),
    }
    kept = []
    for chunk in predictions():
        flagged = flagged_rows(chunk, **rules)
        if len(by_inputs):
            flagged |= chunk[ROW_ID].isin(by_inputs).to_numpy()
        kept.append(chunk[flagged])
    if not kept:
        raise ValueError("review routing: the batch has no chunks")
    frame = pd.concat(kept, ignore_index=True)
    kept_inputs = None
    if review.out_of_range and inputs is not None and profile is not None:
        ids = pd.Index(frame[ROW_ID])
        # The inputs `route_batch` reads: the row id and the profile's features (the rest of
        # the batch's columns would be copied for nothing).
        wanted = {ROW_ID, *profile.ranges, *profile.categories}
        kept_inputs = pd.concat(
            [
                chunk.loc[chunk[ROW_ID].isin(ids), [c for c in chunk.columns if c in wanted]]
                for chunk in inputs()
            ],
            ignore_index=True,
        )
    return route_batch(frame, inputs=kept_inputs, profile=profile, **routing)
