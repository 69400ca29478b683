"""Review routing gathered while a batch is scored in chunks: no second read of the batch.

The step that scores a large batch in chunks (`scored_batch`'s `watch`) hands each chunk's
rows and predictions to a `GatheredRouting`, which keeps the rows a per-row rule flags
(`unified_ai.policies.review_chunks.FlaggedRows`); the queue is then routed from those rows,
with the same result as routing the stored predictions and rows read again.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from unified_ai.io.reader import StoreReader
from unified_ai.io.training_profiles import split_profile
from unified_ai.policies.review import Routing, TrainingProfile
from unified_ai.policies.review_chunks import FlaggedRows
from unified_ai.projects.schema import ProjectConfig

if TYPE_CHECKING:
    import pandas as pd

#: `route_batch`'s keywords a `GatheredRouting` holds itself.
_GATHERED = frozenset({"review", "task", "batch", "threshold", "inputs", "profile"})


class GatheredRouting:
    """The flagged rows of a batch gathered as the step scores it in chunks (`FlaggedRows`).

    `watch` is `scored_batch`'s: given the scoring model, it starts the gathering. A routing
    rule that fails on a chunk is kept to fail the queue, not the predictions.
    """

    def __init__(self, reader: StoreReader, project: ProjectConfig, batch: str):
        self.reader, self.project, self.batch = reader, project, batch
        self.rows: FlaggedRows | None = None
        self.card: dict[str, Any] = {}
        self.error: str | None = None

    @property
    def task(self) -> str:
        """The scoring model's task (the project's before the gathering starts)."""
        return self.project.task if self.rows is None else self.rows.task

    @property
    def profile(self) -> TrainingProfile | None:
        """What the scoring model was trained on, with `out_of_range`."""
        return None if self.rows is None else self.rows.profile

    def watch(self, model: Any) -> Callable[["pd.DataFrame", "pd.DataFrame"], None] | None:
        review = self.project.policy.review
        assert review is not None
        try:
            card = dict(model.card)
            profile = None
            if review.out_of_range:
                profile = split_profile(self.reader.store, self.project, card)
            rows = FlaggedRows(
                review=review,
                task=model.task,
                batch=self.batch,
                threshold=self.project.evaluation.threshold,
                profile=profile,
            )
        except Exception:
            # Nothing gathered: the queue routes the stored predictions and says why it fails.
            return None
        self.card, self.rows = card, rows
        return self.add

    def add(self, inputs: "pd.DataFrame", scored: "pd.DataFrame") -> None:
        if self.error is None and self.rows is not None:
            try:
                self.rows.add(scored, inputs)
            except Exception as exc:  # the predictions are still stored; the queue says why
                self.error = f"routing failed: {type(exc).__name__}: {exc}"[:500]

    def route(self, **routing: Any) -> Routing:
        """`route_batch` of the gathered rows; `routing` as `route_batch`'s keywords.

        The rules' keywords and the inputs are the gathering's own (those given are ignored).

        Raises:
            ValueError: a rule failed on a chunk, nothing was gathered, or as `route_batch`.
        """
        if self.error is not None or self.rows is None:
            raise ValueError(self.error or "the batch was not scored in chunks")
        rest = {name: value for name, value in routing.items() if name not in _GATHERED}
        return self.rows.route(**rest)
