"""Review routing of a batch given in chunks, in bounded memory, with `route_batch`'s result.

Every routing rule but the cap and the quotas is a rule about one row (its score, its
shadow's, its inputs, its seeded audit draw), and the cap and the quotas only rank and cut the
rows those rules flagged: the other rows never enter the order. So a batch read chunk by chunk
is routed by keeping, chunk by chunk, the rows any per-row rule flags (a few percent), and
then routing those rows once, whole, with the cap and the quotas: the same rows, reasons,
counts and order as `route_batch` on the whole frame. Pure: no Dagster import.

The chunks can be the stored ones read again (`route_chunks`) or those a scoring step makes
as it goes (`FlaggedRows.add` with each chunk's rows and predictions): the batch is then
routed without being read again.
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
from unified_ai.projects.schema_review import ReviewPolicy

if TYPE_CHECKING:
    import pandas as pd

Chunks = Callable[[], Iterable["pd.DataFrame"]]
#: Gives a frame in chunks of the columns asked for (those the frame has).
ColumnChunks = Callable[[Sequence[str]], Iterable["pd.DataFrame"]]


class FlaggedRows:
    """The rows of a batch, given chunk by chunk, that a per-row rule flags; then routed.

    Args:
        review: The project's `policy.review`.
        task: The scoring model's task.
        batch: The batch id (its audit draw).
        threshold: The binary decision threshold.
        profile: What the model was trained on; needed by `out_of_range` only.

    Raises:
        ValueError: `out_of_range` is set and no profile is given.
    """

    def __init__(
        self,
        *,
        review: ReviewPolicy,
        task: str,
        batch: str,
        threshold: float = 0.5,
        profile: TrainingProfile | None = None,
    ):
        if review.out_of_range and profile is None:
            raise ValueError("review routing: out_of_range needs the batch's inputs and profile")
        self.review, self.task, self.profile = review, task, profile
        self._rules: dict[str, Any] = {
            "review": review,
            "task": task,
            "batch": batch,
            "threshold": threshold,
        }
        self._kept: list[pd.DataFrame] = []
        self._beyond: list[pd.DataFrame] = []
        self._beyond_ids: Any = None  # the row ids in `_beyond`, once there are some

    def add_inputs(self, inputs: "pd.DataFrame") -> None:
        """Keeps the input rows `out_of_range` routes (their row id and profiled features).

        Every input row of a prediction must be given before that prediction is (`add`).
        """
        if self.profile is None or not self.review.out_of_range:
            return
        wanted = {ROW_ID, *self.profile.ranges, *self.profile.categories}
        chunk = inputs[[c for c in inputs.columns if c in wanted]]  # as a stored frame reads
        beyond = chunk.loc[beyond_training_rows(chunk, self.profile)]
        self._beyond.append(beyond)
        if len(beyond):
            import pandas as pd

            ids = pd.Index(beyond[ROW_ID])
            self._beyond_ids = ids if self._beyond_ids is None else self._beyond_ids.append(ids)

    def add(self, predictions: "pd.DataFrame", inputs: "pd.DataFrame | None" = None) -> None:
        """Keeps the flagged rows of one chunk of predictions (after its `inputs`, if given)."""
        if inputs is not None:
            self.add_inputs(inputs)
        flagged = flagged_rows(predictions, **self._rules)
        if self._beyond_ids is not None:
            flagged |= predictions[ROW_ID].isin(self._beyond_ids).to_numpy()
        self._kept.append(predictions[flagged])

    def route(self, **routing: Any) -> Routing:
        """`route_batch` of the flagged rows, given its other keywords (`project`, `now`, ...).

        Raises:
            ValueError: no chunk was given, or as `route_batch`.
        """
        import pandas as pd

        if not self._kept:
            raise ValueError("review routing: the batch has no chunks")
        frame = pd.concat(self._kept, ignore_index=True)
        inputs = None
        if self.profile is not None and self.review.out_of_range:
            # `route_batch` reads the inputs of these rows only: a row routed for another
            # reason with no inputs here is beyond no range and holds no unseen category, as
            # its own inputs showed (they would be here otherwise).
            inputs = (
                pd.concat(self._beyond, ignore_index=True)
                if self._beyond
                else pd.DataFrame(columns=[ROW_ID, *self.profile.ranges, *self.profile.categories])
            )
        return route_batch(frame, **self._rules, inputs=inputs, profile=self.profile, **routing)


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
            (called once, before the predictions); needed by `out_of_range` only, as
            `route_batch`'s `inputs`.
        profile: What the model was trained on; needed by `out_of_range` only.
        routing: `route_batch`'s other keywords (`review`, `project`, `task`, `batch`, `now`,
            ...).

    Raises:
        ValueError: as `route_batch`.
    """
    rules = {name: routing.pop(name) for name in ("review", "task", "batch")}
    if "threshold" in routing:
        rules["threshold"] = routing.pop("threshold")
    flagged = FlaggedRows(**rules, profile=profile)
    if rules["review"].out_of_range:
        if inputs is None:
            raise ValueError("review routing: out_of_range needs the batch's inputs and profile")
        assert profile is not None  # FlaggedRows refused it
        for chunk in inputs([ROW_ID, *profile.ranges, *profile.categories]):
            flagged.add_inputs(chunk)
            del chunk
    for chunk in predictions():
        flagged.add(chunk)
    return flagged.route(**routing)
