"""The serving service without HTTP: what a request may do, and the work it asks for.

`ServingService` holds the parts of one project's endpoint (the deployment follower, the
traffic writer, the metrics, the label gate, the token guard and the limits) and does the work
the routes ask for: check the project, pick the served model, take a scoring slot, score rows,
accept labels, report health and readiness. Every refusal is a `Refusal` (status, reason,
detail); the routes in `routes.py` only parse the request, call a method and answer.

Scoring uses the deployment the follower holds when the request starts; a swap never changes
the model under a request in flight. A request is answered as a whole: if any row is invalid,
none is scored (422 naming the row, field and reason); when `max_concurrent` requests are being
scored and no slot frees within `queue_seconds`, 503.
"""

import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import anyio

from unified_ai.ml.rows import RowProblem, as_model_categories, frame_from_records, row_problems
from unified_ai.projects.tasks import BINARY, MULTICLASS
from unified_ai.serving.answers import TaskAnswer, task_answers
from unified_ai.serving.auth import TokenGuard
from unified_ai.serving.follower import DeploymentFollower, Served, probe_problem
from unified_ai.serving.held import ServedReviews, settled
from unified_ai.serving.labels import LabelGate, label_problems, label_value
from unified_ai.serving.limits import served_text_plainly_fine, served_text_problems
from unified_ai.serving.metrics import ServingMetrics
from unified_ai.serving.native_threads import one_native_thread
from unified_ai.serving.options import ServeOptions
from unified_ai.serving.plain_rows import CheckedRows, RowPlan, check_rows, row_plan
from unified_ai.serving.refusal import RETRY, Refusal
from unified_ai.serving.slots import ScoringSlots
from unified_ai.serving.traffic import TrafficWriter, record_inputs

if TYPE_CHECKING:
    from unified_ai.io.store import LineageStore
    from unified_ai.projects.schema import ProjectConfig

log = logging.getLogger("unified_ai.serving")


def invalid(problems: list[RowProblem]) -> Refusal:
    """The 422 refusal of a request with `problems` (the first one named, all counted)."""
    more = len(problems) - 1
    detail = problems[0].describe() + (f" (and {more} more problem(s))" if more else "")
    return Refusal(422, "invalid_rows", detail, problems)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


class ServingService:
    """One project's endpoint: follows its deployment in `store`, writes traffic to the inbox.

    Args:
        project: The project served.
        store: The lineage store its deployments are read from.
        inbox_folder: The project's inbox, where served rows and labels are written.
        options: Limits and timings (default: `ServeOptions()`).
        guard: Holds the bearer token writes need (default: none, labels are disabled).
    """

    def __init__(
        self,
        project: "ProjectConfig",
        store: "LineageStore",
        inbox_folder: Any,
        options: ServeOptions | None = None,
        guard: TokenGuard | None = None,
    ):
        self.project = project
        self.store = store
        self.options = options = options or ServeOptions()
        self.guard = guard or TokenGuard("")
        self.metrics = metrics = ServingMetrics(project.name)
        self.follower = DeploymentFollower(
            store,
            project,
            poll_seconds=options.poll_seconds,
            retry_seconds=options.retry_seconds,
            on_swap=lambda old, new: metrics.served(new.deployment_version, new.model_version),
            on_failure=lambda reason: metrics.load_failures.inc(),
        )
        self.writer = TrafficWriter(
            inbox_folder,
            flush_rows=options.flush_rows,
            flush_seconds=options.flush_seconds,
            max_pending_rows=options.max_pending_rows,
            max_inbox_bytes=options.max_inbox_bytes,
            metrics=metrics,
            enabled=options.log_traffic,
        )
        self.label_gate = LabelGate(
            project.name,
            self.writer,
            max_files=options.max_label_files,
            rows_per_minute=options.label_rows_per_minute,
            files_per_minute=options.label_files_per_minute,
        )
        self.reviews = ServedReviews(project, store) if project.policy.review else None
        self.slots = ScoringSlots(project.name, options.max_concurrent, options.queue_seconds)
        self._classes: dict[str, Any] = {}
        self._plans: dict[tuple[str, str], RowPlan] = {}
        self._text_columns: dict[str, tuple[Any, Any]] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Follow and write while the app runs; on exit what is still buffered is written."""
        self.slots.start()
        self.follower.start()
        self.writer.start()
        try:
            yield
        finally:
            self.follower.stop()
            await anyio.to_thread.run_sync(self.writer.stop)

    # -- what a request may do ---------------------------------------------------------------

    def check_project(self, name: str) -> None:
        """Refuse (404) a request for another project."""
        if name != self.project.name:
            raise Refusal(
                404,
                "not_found",
                f"unknown project {name!r}: this service serves {self.project.name}",
            )

    def serving(self) -> Served:
        """The deployment held now (a request finishes on it), or 503 when none is ready."""
        served = self.follower.current
        if served is None:
            status = self.follower.status()
            why = status["last_error"] or (
                f"nothing is deployed for {self.project.name} yet"
                if status["pointer"] is None
                else f"deployment {status['pointer']} is still loading"
            )
            raise Refusal(
                503, "not_ready", f"{self.project.name}: no model is ready ({why})", headers=RETRY
            )
        return served

    def scoring_slot(self) -> ScoringSlots:
        """Hold one of `max_concurrent` slots; 503 when none frees within `queue_seconds`.

        `async with service.scoring_slot(): ...`
        """
        return self.slots

    # -- scoring -----------------------------------------------------------------------------

    def row_plan(self, served: Served) -> RowPlan:
        """What `served`'s rows are checked against, worked out once per deployment."""
        key = (served.deployment_version, served.model_version)
        plan = self._plans.get(key)
        if plan is None:
            plan = row_plan(self.project, served.features, served.categories)
            if len(self._plans) >= 4:  # the current and previous deployments, and a spare
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def text_columns(self, served: Served) -> tuple[list[str], list[str]]:
        """(text columns, capped columns) of the served-text limits.

        Text is checked for control characters; a capped column (no declared category list)
        for its length too.
        """
        project = self.project
        numeric = set(served.features.numeric)
        text = [*served.features.categorical, *project.segments, *project.columns]
        text = [c for c in text if c not in numeric]
        listed = {c for c, rule in project.columns.items() if rule.categories is not None}
        return text, [c for c in text if c not in listed]

    def text_problems(self, served: Served, records: list[Any]) -> list[RowProblem]:
        """Served text the inbox must not hold: too long (no category list), control chars."""
        text, capped = self.text_columns(served)
        return served_text_problems(
            records,
            text,
            capped,
            max_text_chars=self.options.max_text_chars,
            max_row_bytes=self.options.max_row_bytes,
        )

    def _text_problems_of(self, served: Served, records: list[Any]) -> Any:
        """`text_problems`, skipped when the request's columns plainly hold the limits."""
        text, capped = self._text_columns.get(served.deployment_version) or ((), ())
        if not text:
            text, capped = self.text_columns(served)
            self._text_columns = {served.deployment_version: (text, capped)}

        def problems(columns: Any) -> list[RowProblem]:
            options = self.options
            if served_text_plainly_fine(
                columns,
                text,
                capped,
                max_text_chars=options.max_text_chars,
                max_row_bytes=options.max_row_bytes,
            ):
                return []
            return self.text_problems(served, records)

        return problems

    def checked_rows(self, served: Served, records: list[Any]) -> CheckedRows:
        """`records` checked and typed for `served`, without a frame; 422 naming every problem.

        The same rules, messages and order as `model_inputs` (the batch path), on plain values.
        """
        checked, problems = check_rows(
            records, self.row_plan(served), self._text_problems_of(served, records)
        )
        if checked is None:
            raise invalid(problems)
        return checked

    def model_inputs(self, served: Served, records: list[Any]) -> Any:
        """The frame `served` scores from `records`; 422 naming every invalid row (batch path)."""
        project = self.project
        frame, problems = frame_from_records(records, project, served.features)
        if frame is not None:
            problems = row_problems(project, served.features, frame) + self.text_problems(
                served, records
            )
        if problems or frame is None:
            raise invalid(sorted(problems, key=lambda p: -1 if p.row is None else p.row))
        inputs = as_model_categories(frame, served.features.categorical, served.categories)
        return inputs.astype({column: "float64" for column in served.features.numeric})

    def predicted(self, served: Served, inputs: Any) -> Any:
        """The model's predictions for a frame of `inputs`, in its task's shape (batch path).

        Binary: the positive-class probability per row; multiclass: a row of probabilities per
        row, in the order of `served.class_keys`; regression: the predicted value per row.
        500 when the model fails or gives something else.
        """
        from unified_ai.ml.training import predict

        return self._checked_prediction(
            served, len(inputs), lambda: predict(served.model, inputs, served.features)
        )

    def predicted_columns(self, served: Served, checked: CheckedRows) -> Any:
        """The model's predictions for checked rows, from their typed columns (no frame).

        Through `TrainedModel.predict_columns` (the compiled scorer on arrays) when the model
        has it; else the same columns as a frame through `TrainedModel.predict`.
        """
        model = served.model
        by_columns = getattr(model, "predict_columns", None)
        if by_columns is not None:
            return self._checked_prediction(
                served, checked.count, lambda: by_columns(checked.model)
            )

        def framed() -> Any:
            import pandas as pd

            return model.predict(pd.DataFrame(checked.model)[served.features.all])

        return self._checked_prediction(served, checked.count, framed)

    def _checked_prediction(self, served: Served, rows: int, score: Any) -> Any:
        """`score()` as a float64 array of the task's shape for `rows` rows (else 500)."""
        import numpy as np

        one_native_thread()
        try:
            predicted = np.asarray(score(), dtype="float64")
        except Exception as exc:
            where = f"{self.project.name}/candidate_model@{served.model_version}"
            log.error("%s: scoring %d rows failed", where, rows, exc_info=exc)
            raise Refusal(
                500, "internal", f"{where}: scoring failed ({_first_line(exc)})"
            ) from None
        wanted = probe_problem(served.task, predicted, len(served.class_keys), rows)
        if wanted is not None:
            where = f"{self.project.name}/candidate_model@{served.model_version}"
            raise Refusal(
                500, "internal", f"{where}: the model did not return {wanted} for each row"
            )
        return predicted

    def score(self, served: Served, records: list[Any]) -> dict[str, Any]:
        """Score `records` with `served`, write them to the inbox; the predict answer.

        Rows are checked and scored on plain values and typed arrays (`checked_rows`,
        `predicted_columns`; `score_frame`: the same through a pandas frame). Each row's answer
        is its task's (`answers.py`); with `policy.review`, routed rows are kept (`held.py`).
        """
        return settled(self.reviews, *self.score_routed(served, records))

    def score_routed(self, served: Served, records: list[Any]) -> tuple[dict[str, Any], Any]:
        """`score` before the routed rows are kept (`held.settled`): (answer, routed or None)."""
        checked = self.checked_rows(served, records)
        predicted = self.predicted_columns(served, checked)
        answer = task_answers(served, predicted, self.project)
        ids = self.writer.record_columns(
            checked.count, record_inputs(checked.written), served, answer.served_columns
        )
        result = self._answer(served, answer, ids)
        if self.reviews is None:  # no policy.review: no review work at all
            return result, None
        return result, self.reviews.route(served, predicted, ids, checked=checked)

    def score_frame(self, served: Served, records: list[Any]) -> dict[str, Any]:
        """`score` through a pandas frame (`model_inputs`, `predicted`): the batch path."""
        inputs = self.model_inputs(served, records)
        predicted = self.predicted(served, inputs)
        answer = task_answers(served, predicted, self.project)
        ids = self.writer.record_answers(inputs, served, answer.served_columns)
        reviews = self.reviews
        routed = None if reviews is None else reviews.route(served, predicted, ids, inputs=inputs)
        return settled(reviews, self._answer(served, answer, ids), routed)

    def _answer(self, served: Served, answer: TaskAnswer, ids: list[str]) -> dict[str, Any]:
        project = self.project
        self.metrics.scored(served.deployment_version, len(ids))
        versions = {
            "model_version": served.model_version,
            "deployment_version": served.deployment_version,
        }
        return {
            "project": project.name,
            "deployment_version": served.deployment_version,
            "model_version": served.model_version,
            **answer.header,
            "predictions": [
                {"row_id": row_id, **row, **versions}
                for row_id, row in zip(ids, answer.rows, strict=True)
            ],
        }

    # -- labels ------------------------------------------------------------------------------

    def label_classes(self) -> list[Any]:
        """The training classes, as the ground_truth asset checks them (current train split)."""
        from unified_ai.ml.data import target_classes
        from unified_ai.names import TRAIN_SPLIT

        project = self.project
        path = [project.name, TRAIN_SPLIT]
        try:
            version = self.store.current_version(path)
            if version is None:
                raise Refusal(
                    503,
                    "not_ready",
                    f"{project.name}/{TRAIN_SPLIT} has no version yet",
                    headers=RETRY,
                )
            if self._classes.get("version") != version:
                classes = target_classes(project, self.store.read_value(path, version))
                self._classes.update(version=version, classes=classes)
        except Refusal:
            raise
        except Exception as exc:
            raise Refusal(
                503, "not_ready", f"labels cannot be checked: {_first_line(exc)}"
            ) from None
        return self._classes["classes"]

    def accept_labels(self, records: list[Any]) -> dict[str, Any]:
        """Check `records` ({row_id, label}) and write them as label files; the labels answer.

        A label is checked as the project's task needs (`labels.label_problems`): binary one
        of the training classes, multiclass one of the served model's classes, regression a
        finite number; it is written as the ground_truth asset reads it (`labels.label_value`).
        """
        task = self.project.task
        classes: Sequence[Any] = ()
        if task == BINARY:
            classes = self.label_classes()
        elif task == MULTICLASS:
            classes = self.serving().class_keys
        problems: list[RowProblem] = []
        pairs: list[tuple[str, Any]] = []
        for index, item in enumerate(records):
            if not isinstance(item, dict):
                problems.append(RowProblem(index, "", "is not an object {row_id, label}"))
                continue
            found = label_problems(index, item, classes, task)
            problems += found
            if not found:
                # A row id is a str once `label_problems` found nothing (checked before use).
                pairs.append((cast(str, item.get("row_id")), label_value(task, item["label"])))
        if problems:
            raise invalid(problems)
        self.label_gate.check(pairs)
        files = self.writer.write_labels(pairs, self.project.target)
        return {"accepted": len(pairs), "files": files}

    # -- health ------------------------------------------------------------------------------

    def health(self) -> tuple[dict[str, Any], int]:
        """Liveness (body, status): the follower and the writer threads run."""
        alive = {"following": self.follower.alive, "writing": self.writer.alive}
        ok = all(alive.values())
        return {"status": "ok" if ok else "degraded", **alive}, 200 if ok else 503

    def readiness(self) -> tuple[dict[str, Any], int]:
        """Readiness (body, status): a deployed model is loaded and verified."""
        status = self.follower.status()
        traffic = self.writer.status()
        # Which worker answered (`serve --workers N`: each follows the deployment itself).
        body = {**status, "process": os.getpid(), "traffic": traffic}
        if traffic["inbox_full"]:
            # Still ready: predictions are answered. What is not kept is said here.
            traffic["warning"] = (
                f"the inbox reached its quota of {self.options.max_inbox_bytes} bytes: served "
                "rows are answered but not written (counted in rows_dropped); labels are refused"
            )
        if not status["ready"]:
            body["detail"] = status["last_error"] or (
                f"nothing is deployed for {self.project.name} yet"
                if status["pointer"] is None
                else f"loading deployment {status['pointer']}"
            )
        return body, 200 if status["ready"] else 503
