"""Training: fit the project's pipeline, log it to MLflow and register a new model version."""

import dagster as dg

from unified_ai.ml.artifacts import TrainedModel
from unified_ai.ml.data import FeatureColumns
from unified_ai.ml.metrics import task_metrics
from unified_ai.ml.onnx_model import probe_rows
from unified_ai.ml.targets import TargetError, encode_target
from unified_ai.ml.training import TrainingError, fit, predict, task_card
from unified_ai.names import CANDIDATE_MODEL, TRAIN_SPLIT
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.mlflow_registry import MlflowRegistry
from unified_ai.resources.storage import LineageStorage
from unified_ai.resources.training_runner import TrainingRunner
from unified_ai.stages.common import (
    DATA_FRAME,
    DataFrame,
    asset_metadata,
    key,
    run_actor,
    stage_tags,
)
from unified_ai.stages.placement import TRAINING_POOL, stage_op_tags


def _fit_in_process(project: ProjectConfig, train_split: DataFrame):
    """(pipeline, features, the card's task fields, the task's metrics on the train split)."""
    try:
        pipeline, features = fit(project, train_split)
        task = task_card(project, train_split)
        y = encode_target(project, train_split, task.get("classes"))
    except (TrainingError, TargetError) as exc:
        raise dg.Failure(description=f"{project.name}/candidate_model: {exc}") from None
    # Scored as the stored model will be: the card's task and class order decide the shape.
    scored = TrainedModel(pipeline=pipeline, card=dict(task))
    metrics = task_metrics(
        project.task, y, predict(scored, train_split, features), project.evaluation.threshold
    )
    training_metrics = {f"train_{k}": v for k, v in metrics.items() if v is not None}
    return pipeline, features, task, training_metrics


def _fit_with_pipes(
    context,
    project: ProjectConfig,
    runner,
    reader,
    data_version: str,
    train_split: DataFrame,
    task: dict,
):
    """Train in an external process (Pipes); the model comes back through the store.

    The script hands back a skops pipeline, or an ONNX model with its own predictions for the
    probe rows (`unified_ai.ml.onnx_model`), accepted only if the ONNX model reproduces them.
    """
    import uuid

    from unified_ai.io.formats import UnsupportedValueError, load_handback
    from unified_ai.stages.placement import pipes_pod_spec

    data_path = key(project, TRAIN_SPLIT).path
    incoming = reader.asset_dir([project.name, CANDIDATE_MODEL]) / ".incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    model_file = incoming / f"{uuid.uuid4().hex}.skops"
    extras = {
        # Notification channels hold webhook credentials; the training process needs none of
        # them, and on a cluster extras travel in the pod spec.
        "project": project.model_dump(mode="json", by_alias=True, exclude=_pipes_exclude(project)),
        "data_uri": str(reader.version_dir(data_path, data_version) / "data.parquet"),
        "model_uri": str(model_file),
    }
    try:
        invocation = runner.run(context, project, extras, base_pod_spec=pipes_pod_spec(project))
        reported = {}
        for result in invocation.get_results():
            metadata = (result.metadata or {}).items()
            reported.update({k: getattr(v, "value", v) for k, v in metadata})
        if not model_file.exists():
            raise dg.Failure(
                description=f"{project.name}/candidate_model: the training script wrote no model "
                f"to {model_file}"
            )
        data = model_file.read_bytes()
    finally:
        # The hand-off file is consumed or discarded, never left for a later reader.
        if model_file.exists():
            model_file.unlink()
    # The file comes from another process (a pod, a user script): it is checked like a stored
    # model before skops decodes it, so a crafted file is refused instead of run.
    where = f"{project.name}/candidate_model@run-{context.run_id[:8]} (Pipes hand-off)"
    if not isinstance(reported.get("features"), dict):
        raise dg.Failure(
            description=f"{where}: the training script reported no `features` metadata"
        )
    features = FeatureColumns(**reported.pop("features"))
    try:
        pipeline = load_handback(
            data,
            reported,
            train_split,
            numeric=features.numeric,
            categorical=features.categorical,
            task=project.task,
            classes=task.get("classes"),
            where=where,
        )
    except UnsupportedValueError as exc:
        raise dg.Failure(description=str(exc)) from None
    metrics = {k: float(v) for k, v in reported.items() if k.startswith("train_")}
    return pipeline, features, metrics


def _pipes_exclude(project: ProjectConfig) -> dict:
    """The fields the training process is not sent.

    Besides notification channels: a binary-only field (positive label, threshold) of another
    task's project. Its default is in the dump, and the process validates the project again,
    where a positive label on a regression reads as set by the user and is refused.
    """
    from unified_ai.projects.tasks import BINARY

    exclude: dict = {"policy": {"notifications"}}
    if project.task != BINARY:
        exclude.update({"positive_label": True, "evaluation": {"threshold"}})
    return exclude


def build_candidate_model(project: ProjectConfig) -> dg.AssetsDefinition:
    train_key = key(project, TRAIN_SPLIT)
    runner_label = project.training.runner
    where = "in an external process (Dagster Pipes)" if runner_label == "pipes" else "in the step"

    @dg.asset(
        key=key(project, CANDIDATE_MODEL),
        ins={"train_split": dg.AssetIn(key=train_key, dagster_type=DATA_FRAME)},
        tags=stage_tags("training"),
        description=f"A {project.estimator.class_name} pipeline trained on the train split "
        f"{where}, logged to MLflow and registered as a new model version.",
        metadata=asset_metadata(project),
        kinds={"scikitlearn", "mlflow"},
        op_tags=stage_op_tags(project, "training"),
        # One training at a time per pool limit (dagster.yaml / the cluster's instance).
        pool=TRAINING_POOL,
    )
    def candidate_model(
        context: dg.AssetExecutionContext,
        mlflow: MlflowRegistry,
        lineage: LineageStorage,
        training_runner: TrainingRunner,
        train_split: DataFrame,
    ):
        reader = lineage.reader(context)
        data_version = reader.require_current(train_key.path)
        if runner_label == "pipes":
            task = _pipes_task_card(project, train_split)
            pipeline, features, training_metrics = _fit_with_pipes(
                context, project, training_runner, reader, data_version, train_split, task
            )
        else:
            pipeline, features, task, training_metrics = _fit_in_process(project, train_split)
        actor = run_actor(context)
        registered = mlflow.log_and_register(
            model_name=project.model_name,
            experiment=f"unified_ai/{project.name}",
            pipeline=pipeline,
            params={"estimator": project.estimator.class_name, **project.estimator.params},
            metrics=training_metrics,
            dagster_run_id=context.run_id,
            tags=_run_tags(project, data_version=data_version, run_id=context.run_id, actor=actor),
        )
        card = _model_card(
            project,
            pipeline,
            features,
            task,
            training_metrics,
            data_version=data_version,
            actor=actor,
            run_id=context.run_id,
            registered=registered,
        )
        return dg.Output(
            TrainedModel(
                pipeline=pipeline,
                card=card,
                # The rows the store verifies the model's ONNX form on (as a hand-back's are).
                probe_rows=probe_rows(train_split, features.numeric, features.categorical),
            ),
            metadata={
                "estimator": project.estimator.class_name,
                "task": project.task,
                **(
                    {"classes": dg.MetadataValue.json(task["classes"])} if "classes" in task else {}
                ),
                "params": dg.MetadataValue.json(project.estimator.params),
                **{k: dg.MetadataValue.float(v) for k, v in training_metrics.items()},
                "training_runner": runner_label,
                "data_version": data_version,
                "mlflow_run_id": registered["run_id"],
                "mlflow_model_version": registered["version"],
                "mlflow_model_uri": registered["model_uri"],
                "trained_by": actor,
            },
        )

    return candidate_model


def _model_card(
    project: ProjectConfig,
    pipeline,
    features,
    task: dict,
    training_metrics: dict,
    *,
    data_version: str,
    actor: str,
    run_id: str,
    registered: dict,
) -> dict:
    """The candidate's card: how it was trained, on what, by whom, and where it is registered."""
    return {
        "project": project.name,
        "estimator": project.estimator.class_name,
        # A script may hand back another framework's model as ONNX (then `estimator` is
        # only the project's declared class, not what the script trained).
        "model_format": "onnx" if getattr(pipeline, "is_onnx", False) else "skops",
        "params": project.estimator.params,
        "features": {"numeric": features.numeric, "categorical": features.categorical},
        "target": project.target,
        # The task and (multiclass) the class order of the model's probability columns:
        # every later reader scores the model by these, not by the project's current file.
        **task,
        "positive_label": project.positive_label,
        "training_metrics": training_metrics,
        "training_runner": project.training.runner,
        "train_split_version": data_version,
        "trained_by": actor,
        "dagster_run_id": run_id,
        "mlflow": registered,
    }


def _pipes_task_card(project: ProjectConfig, train_split: DataFrame) -> dict:
    """The card's task fields for a model trained by the external process.

    The training script learns the encoded target of the same train split, so the class list
    is the one `task_card` infers from it (or the project's declared one).
    """
    try:
        return task_card(project, train_split)
    except TargetError as exc:
        raise dg.Failure(description=f"{project.name}/candidate_model: {exc}") from None


def _run_tags(project: ProjectConfig, *, data_version: str, run_id: str, actor: str) -> dict:
    """Tags of the candidate's MLflow run: where it came from, who and what trained it."""
    return {
        "unified_ai.project": project.name,
        "unified_ai.task": project.task,
        "unified_ai.data_version": data_version,
        "unified_ai.dagster_run_id": run_id,
        "unified_ai.trained_by": actor,
        "unified_ai.training_runner": project.training.runner,
        "unified_ai.policy_version": project.policy_version,
    }


def build_training_asset_defs(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    return [build_candidate_model(project)]
