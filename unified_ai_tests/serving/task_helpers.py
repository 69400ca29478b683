"""Deployments of regression and multiclass models written to a store (as `helpers.deploy`)."""

from collections.abc import Callable

import pandas as pd

from unified_ai.io.formats import serialize
from unified_ai.io.store import LineageStore
from unified_ai.ml.artifacts import TrainedModel
from unified_ai.ml.training import fit, task_card
from unified_ai.projects.tasks import MULTICLASS, REGRESSION
from unified_ai_tests.tasks_fixtures import make_multiclass_frame, make_regression_frame

#: The synthetic rows of each task, by seed.
FRAMES: dict[str, Callable[..., pd.DataFrame]] = {
    REGRESSION: make_regression_frame,
    MULTICLASS: make_multiclass_frame,
}


def deploy_task(
    store: LineageStore, project, seed: int = 0, *, card_extra: dict | None = None
) -> tuple[str, str]:
    """Fit the project's pipeline on its task's synthetic rows, store it and deploy it.

    The model card records the task (and classes) as training does; `card_extra` overrides
    card fields (e.g. another task, to test a refusal). Also stores the train split.
    Returns (deployment version, model version).
    """
    frame = FRAMES[project.task](seed=seed)
    pipeline, features = fit(project, frame)
    card = {
        "features": {"numeric": features.numeric, "categorical": features.categorical},
        **task_card(project, frame),
        **(card_extra or {}),
    }
    model = store.write_version(
        [project.name, "candidate_model"], *serialize(TrainedModel(pipeline, card))
    )
    payload = {"model_version": model.version, "deployed_at": f"seed {seed}"}
    deployment = store.write_version([project.name, "deployed_model"], *serialize(payload))
    split = store.write_version([project.name, "train_split"], *serialize(frame))
    store.set_current([project.name, "train_split"], split.version, action="materialize")
    store.set_current([project.name, "deployed_model"], deployment.version, action="materialize")
    return deployment.version, model.version


def task_rows(task: str, count: int = 4, seed: int = 5) -> tuple[list[dict], pd.Series]:
    """Request rows of `task`'s synthetic data, and their true targets."""
    frame = FRAMES[task](rows=count, seed=seed)
    target = "price" if task == REGRESSION else "queue"
    return frame.drop(columns=[target]).to_dict(orient="records"), frame[target]
