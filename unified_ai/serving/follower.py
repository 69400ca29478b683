"""Following a project's deployment: load a new model in the background, swap one reference.

The served model is one immutable `Served` object behind one attribute. A request reads that
attribute once and scores with what it got, so a swap never changes a model under a request
in flight. A deployment that cannot be loaded (damaged, refused by the store's safety rules,
unable to score) never replaces the one being served: the failure is reported and retried.
"""

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unified_ai.ml.artifacts import TrainedModel
from unified_ai.ml.data import FeatureColumns
from unified_ai.names import CANDIDATE_MODEL, DEPLOYED_MODEL, TRAIN_SPLIT
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION, class_key

if TYPE_CHECKING:
    from unified_ai.io.store import LineageStore
    from unified_ai.policies.review import TrainingProfile
    from unified_ai.projects.schema import ProjectConfig

log = logging.getLogger("unified_ai.serving")


class DeploymentLoadError(RuntimeError):
    """A deployment cannot be served; the message names `project/asset@version` and why."""


@dataclass(frozen=True)
class Served:
    """One loaded, verified deployment. Never changed after it is built.

    Attributes:
        model: The model, its sklearn pipeline loaded: small requests are answered by its
            compiled scorer (faster per call), larger ones by the pipeline.
        features: The model's input columns (from its card).
        deployment_version: The `deployed_model` version being served.
        model_version: The `candidate_model` version that deployment names.
        categories: Per categorical feature, the categories the fitted encoder knows (as text).
        deployed_at: When the deployment was made (from its payload).
        loaded_at: When this process finished loading and verifying it (epoch seconds).
        load_seconds: How long loading and verifying took.
        class_keys: A multiclass model's classes as text (`class_key`), in the order of its
            probability columns; empty for the other tasks.
        review_profile: What the model was trained on (its card's train split), read once
            here for `policy.review.out_of_range`; None without that rule or that split.
    """

    model: TrainedModel
    features: FeatureColumns
    deployment_version: str
    model_version: str
    categories: Mapping[str, frozenset[str]] = field(default_factory=dict)
    deployed_at: str | None = None
    loaded_at: float = 0.0
    load_seconds: float = 0.0
    class_keys: tuple[str, ...] = ()
    review_profile: "TrainingProfile | None" = None

    @property
    def task(self) -> str:
        """The served model's task (`unified_ai.projects.tasks`)."""
        return self.model.task


def encoder_categories(model: TrainedModel) -> dict[str, frozenset[str]]:
    """The categories a fitted model's encoders know, per input column, as text.

    From its compiled scorer when it has one; else walks its Pipeline → ColumnTransformer →
    (Pipeline →) encoder; anything else yields nothing (scoring then writes categories with
    plain `str()`, as batch scoring does).
    """
    if model.scorer is not None:
        return {c: frozenset(known) for c, known in model.scorer.categories.items()}
    found: dict[str, frozenset[str]] = {}
    for _, step in getattr(model.pipeline, "steps", []):
        for _, transformer, columns in getattr(step, "transformers_", []):
            parts = [s for _, s in getattr(transformer, "steps", [])] or [transformer]
            encoder = next((p for p in parts if hasattr(p, "categories_")), None)
            if encoder is None or not isinstance(columns, list):
                continue
            for column, known in zip(columns, encoder.categories_, strict=False):
                found[str(column)] = frozenset(str(c) for c in known if c == c)  # drop NaN
    return found


def load_deployment(store: "LineageStore", project: "ProjectConfig", version: str) -> Served:
    """Load `deployed_model@version` and its model through the store, and check it can score.

    The store verifies checksums (and signatures) and loads only models whose types pass its
    safety rules. The model then scores a probe row of missing values, which the training
    pipeline imputes: a model that cannot score it, or whose answer is not its task's (one
    probability, k probabilities summing to 1, one finite number), would fail requests, so it
    is refused here, as is a model of another task than the project's.

    Raises:
        DeploymentLoadError: naming the asset@version and the reason, in one line.
    """
    import numpy as np
    import pandas as pd

    from unified_ai.ml.training import predict

    started = time.monotonic()
    where = f"{project.name}/{DEPLOYED_MODEL}@{version}"
    try:
        payload = store.read_value([project.name, DEPLOYED_MODEL], version)
        if not isinstance(payload, dict) or not isinstance(payload.get("model_version"), str):
            raise DeploymentLoadError(f"{where}: the deployment names no model_version")
        model_version = payload["model_version"]
        model = store.read_value([project.name, CANDIDATE_MODEL], model_version)
    except DeploymentLoadError:
        raise
    except Exception as exc:  # store refusals already name asset@version and the reason
        raise DeploymentLoadError(_one_line(exc)) from None
    model_where = f"{project.name}/{CANDIDATE_MODEL}@{model_version}"
    if not isinstance(model, TrainedModel):
        raise DeploymentLoadError(f"{model_where}: is a {type(model).__name__}, not a model")
    try:
        features = FeatureColumns(**model.card["features"])
        if not all(isinstance(c, str) for c in features.all) or not features.all:
            raise TypeError("feature names are not a list of text")
    except (KeyError, TypeError) as exc:
        raise DeploymentLoadError(
            f"{model_where}: the model card has no usable features ({_one_line(exc)})"
        ) from None
    class_keys = _check_task(project, model, model_where)
    probe = pd.DataFrame({column: [np.nan] for column in features.all}).astype(
        {column: "float64" for column in features.numeric}
    )
    try:
        predicted = np.asarray(predict(model, probe, features), dtype="float64")
    except Exception as exc:
        raise DeploymentLoadError(
            f"{model_where}: the model cannot score a row of missing values ({_one_line(exc)}); "
            "refusing to serve it"
        ) from None
    wrong = probe_problem(model.task, predicted, len(class_keys))
    if wrong:
        raise DeploymentLoadError(
            f"{model_where}: the model returned {predicted.tolist()} for a probe row, not "
            f"{wrong}; refusing to serve it"
        )
    try:
        # Once per deployment: requests of more than a hundred rows are faster through
        # sklearn, and no request should wait for its import.
        model.load_pipeline()
    except Exception as exc:  # the store's refusal names the version and the reason
        raise DeploymentLoadError(_one_line(exc)) from None
    return Served(
        model=model,
        features=features,
        deployment_version=version,
        model_version=model_version,
        categories=encoder_categories(model),
        deployed_at=payload.get("deployed_at"),
        loaded_at=time.time(),
        load_seconds=time.monotonic() - started,
        class_keys=class_keys,
        review_profile=review_profile(store, project, model),
    )


def review_profile(
    store: "LineageStore", project: "ProjectConfig", model: TrainedModel
) -> "TrainingProfile | None":
    """What `model` was trained on, for `policy.review.out_of_range` (None without the rule).

    Read once per deployment, off the request path: the train split version its card names
    (the rows its ranges and categories come from, as the batch path reads them). A card that
    names no stored split gives None: served rows are then routed by the other rules only.
    """
    review = project.policy.review
    if review is None or not review.out_of_range:
        return None
    from unified_ai.io.training_profiles import split_profile

    try:
        profile = split_profile(store, project, model.card or {})
    except Exception as exc:  # the model still serves; the rule is reported off
        log.warning("%s: no training profile for out_of_range (%s)", project.name, _one_line(exc))
        return None
    if not profile.source.startswith(TRAIN_SPLIT):
        log.warning(
            "%s: the model card names no stored train split; served rows are not compared "
            "with the training range (out_of_range)",
            project.name,
        )
        return None
    return profile


def _check_task(project: "ProjectConfig", model: TrainedModel, where: str) -> tuple[str, ...]:
    """A multiclass model's classes as text; refuses a model of another task than the project's.

    An endpoint answers in its project's task (its OpenAPI document says so): a model of
    another task, or a multiclass model without a usable class list, would answer wrongly.
    """
    if model.task != project.task:
        raise DeploymentLoadError(
            f"{where}: the model is a {model.task} model but project {project.name} is "
            f"{project.task}; refusing to serve it"
        )
    if model.task != MULTICLASS:
        return ()
    classes = model.classes or []
    keys = tuple(class_key(c) for c in classes)
    if len(keys) < 2 or len(set(keys)) != len(keys):
        raise DeploymentLoadError(
            f"{where}: the model card's classes {classes} are not a list of distinct classes; "
            "refusing to serve it"
        )
    return keys


#: How far a multiclass row's probabilities may sum from 1 (rounding of the estimator).
PROBABILITY_SUM_TOLERANCE = 1e-6


def probe_problem(task: str, predicted: Any, classes: int, rows: int = 1) -> str | None:
    """What each of the `rows` rows of a model's output `predicted` should be; None if it is.

    Binary: one probability in [0, 1] per row; regression: one finite number per row;
    multiclass: `classes` probabilities per row, in [0, 1], summing to 1.
    """
    import numpy as np

    if task == REGRESSION:
        if predicted.shape != (rows,) or not np.isfinite(predicted).all():
            return "one finite number"
        return None
    if task == MULTICLASS:
        if (
            predicted.shape != (rows, classes)
            or not np.isfinite(predicted).all()
            or ((predicted < 0) | (predicted > 1)).any()
            or not np.allclose(predicted.sum(axis=1), 1.0, atol=PROBABILITY_SUM_TOLERANCE)
        ):
            return f"{classes} probabilities summing to 1"
        return None
    if task != BINARY:
        return f"a prediction of a known task (unknown task {task!r})"
    if (
        predicted.shape != (rows,)
        or not np.isfinite(predicted).all()
        or ((predicted < 0) | (predicted > 1)).any()
    ):
        return "one probability"
    return None


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class DeploymentFollower:
    """Serves the project's current deployment, following its pointer from a background thread.

    Args:
        store: The lineage store (local folder or object store).
        project: The project whose `deployed_model` pointer is followed.
        poll_seconds: How often the pointer is read.
        retry_seconds: How long a deployment that failed to load waits before it is tried again
            (the pointer moving to another version is tried at once).
        on_swap: Called with (old, new) after each swap; it must not raise.
        on_failure: Called with the one-line reason of each new failure; it must not raise.
    """

    def __init__(
        self,
        store: "LineageStore",
        project: "ProjectConfig",
        *,
        poll_seconds: float = 0.5,
        retry_seconds: float = 5.0,
        on_swap: Callable[[Served | None, Served], None] | None = None,
        on_failure: Callable[[str], None] | None = None,
    ):
        self.store = store
        self.project = project
        self.poll_seconds = poll_seconds
        self.retry_seconds = retry_seconds
        self._on_swap = on_swap
        self._on_failure = on_failure
        self._served: Served | None = None
        # The deployment served before the current one, kept loaded: rolling back to it is a
        # reference swap, not a load.
        self._previous: Served | None = None
        self._pointer: str | None = None
        self._failed: tuple[str, str, float] | None = None  # version, reason, retry after
        self._last_error: str | None = None
        self._swaps = 0
        self._polled_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> Served | None:
        """The deployment to score a request with: read it once per request."""
        return self._served

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"follow-{self.project.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # never let the follower die: the old model keeps serving
                log.exception("%s: following the deployment failed", self.project.name)
            self._stop.wait(self.poll_seconds)

    def poll_once(self) -> None:
        """Read the pointer; if it moved, load the deployment it names and swap it in."""
        label = f"{self.project.name}/{DEPLOYED_MODEL}"
        try:
            version = self.store.current_version([self.project.name, DEPLOYED_MODEL])
        except Exception as exc:
            self._fail(None, f"{label}: the pointer cannot be read ({_one_line(exc)})")
            return
        finally:
            self._polled_at = time.time()
        self._pointer = version
        served = self._served
        if version is None or (served is not None and served.deployment_version == version):
            if version is not None:
                self._last_error = None
            return
        if self._failed and self._failed[0] == version and time.monotonic() < self._failed[2]:
            return  # failed recently: retried after retry_seconds
        previous = self._previous
        if previous is not None and previous.deployment_version == version:
            new = previous
        else:
            try:
                new = load_deployment(self.store, self.project, version)
            except DeploymentLoadError as exc:
                self._fail(version, str(exc))
                return
        self._previous, self._served = served, new  # the swap: one reference
        self._failed = None
        self._last_error = None
        self._swaps += 1
        log.info(
            "%s: now serving deployment %s (model %s)%s; loaded in %.2f s",
            self.project.name,
            new.deployment_version,
            new.model_version,
            f", replacing {served.deployment_version}" if served else "",
            new.load_seconds,
        )
        if self._on_swap is not None:
            self._on_swap(served, new)

    def _fail(self, version: str | None, reason: str) -> None:
        if reason != self._last_error:  # logged once, not every poll
            serving = self._served
            log.error(
                "%s; %s",
                reason,
                f"still serving {serving.deployment_version}" if serving else "nothing served",
            )
            if self._on_failure is not None:
                self._on_failure(reason)
        self._last_error = reason
        if version is not None:
            self._failed = (version, reason, time.monotonic() + self.retry_seconds)

    def status(self) -> dict[str, Any]:
        """What /readyz reports: what is served, what the pointer says, the last failure."""
        served = self._served
        return {
            "project": self.project.name,
            "ready": served is not None,
            "deployment_version": served.deployment_version if served else None,
            "model_version": served.model_version if served else None,
            "deployed_at": served.deployed_at if served else None,
            "loaded_at": served.loaded_at if served else None,
            "pointer": self._pointer,
            "following": self.alive,
            "swaps": self._swaps,
            "last_error": self._last_error,
        }
