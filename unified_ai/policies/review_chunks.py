"""Review routing of a batch given in chunks, in bounded memory, with `route_batch`'s result.

Every routing rule but the cap and the quotas is a rule about one row (its score, its
shadow's, its inputs, its seeded audit draw), and the cap and the quotas only rank and cut the
rows those rules flagged: the other rows never enter the order. So a batch read chunk by chunk
is routed by keeping, chunk by chunk, the rows any per-row rule flags (a few percent), and
then routing those rows once, whole, with the cap and the quotas: the same rows, reasons,
counts and order as `route_batch` on the whole frame. Pure: no Dagster import.
"""

from collections.abc import Callable, Iterable, Sequence
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
#: Gives a frame in chunks of the columns asked for (those the frame has).
ColumnChunks = Callable[[Sequence[str]], Iterable["pd.DataFrame"]]


def route_chunks(
    predictions: Chunks,
    *,
    inputs: ColumnChunks | None = None,
    profile: TrainingProfile | None = None,
    **routing: Any,
) -> Routing:
    """`route_batch` of a batch whose predictions (and inputs) are read in chunks.

    Args:
        predictions: Gives the batch's `predictions` frame in chunks (called once).
        inputs: Gives the batch's input rows in chunks, of the columns it is asked for
            (called once); needed by `out_of_range` only, as `route_batch`'s `inputs`.
        profile: What the model was trained on; needed by `out_of_range` only.
        routing: `route_batch`'s other keywords (`review`, `project`, `task`, `batch`, `now`,
            ...), passed unchanged to the final routing.

    Raises:
        ValueError: as `route_batch`.
    """
    import pandas as pd

    review = routing["review"]
    beyond = None
    if review.out_of_range:
        if inputs is None or profile is None:
            raise ValueError("review routing: out_of_range needs the batch's inputs and profile")
        beyond = _rows_beyond_training(inputs, profile)
    by_inputs = pd.Index([] if beyond is None else beyond[ROW_ID])
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
    return route_batch(frame, inputs=beyond, profile=profile, **routing)


def _rows_beyond_training(inputs: ColumnChunks, profile: TrainingProfile) -> "pd.DataFrame":
    """The input rows `out_of_range` routes: their row id and the profile's features.

    `route_batch` reads the inputs of those rows only: a row it routes for another reason and
    finds no inputs for is beyond no range and holds no unseen category, as its own inputs
    would have shown (they are not beyond, or they would be here).
    """
    import pandas as pd

    wanted = [ROW_ID, *profile.ranges, *profile.categories]
    found = []
    for chunk in inputs(wanted):
        found.append(chunk.loc[beyond_training_rows(chunk, profile)])
        del chunk
    if not found:
        return pd.DataFrame(columns=wanted)
    return pd.concat(found, ignore_index=True)
