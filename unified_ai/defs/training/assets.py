"""Training: fit the project's pipeline, log it to MLflow and register a new model version."""

import dagster as dg

from unified_ai.defs.keys import CANDIDATE_MODEL, TRAIN_SPLIT, asset_metadata, key, run_actor
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.mlflow_registry import MlflowRegistry
from unified_ai.resources.storage import LineageStorage


def build_candidate_model(project: ProjectConfig) -> dg.AssetsDefinition:
    train_key = key(project, TRAIN_SPLIT)

    @dg.asset(
        key=key(project, CANDIDATE_MODEL),
        ins={"train_split": dg.AssetIn(key=train_key)},
        group_name="training",
        description=f"A {project.estimator.class_name} pipeline trained on the train split, "
        "logged to MLflow and registered as a new model version.",
        metadata=asset_metadata(project),
        kinds={"scikitlearn", "mlflow"},
    )
    def candidate_model(
        context: dg.AssetExecutionContext,
        mlflow: MlflowRegistry,
        lineage: LineageStorage,
        train_split,
    ):
        from unified_ai.ml.artifacts import TrainedModel
        from unified_ai.ml.data import binary_target
        from unified_ai.ml.evaluation import classification_metrics
        from unified_ai.ml.training import TrainingError, fit, predict_proba

        data_version = lineage.store().require_current(train_key.path)
        try:
            pipeline, features = fit(project, train_split)
        except TrainingError as exc:
            raise dg.Failure(description=f"{project.name}/candidate_model: {exc}") from None
        y = binary_target(project, train_split).to_numpy()
        metrics = classification_metrics(
            y, predict_proba(pipeline, train_split, features), project.evaluation.threshold
        )
        training_metrics = {f"train_{k}": v for k, v in metrics.items() if v is not None}
        actor = run_actor(context)
        registered = mlflow.log_and_register(
            model_name=project.model_name,
            experiment=f"unified_ai/{project.name}",
            pipeline=pipeline,
            params={"estimator": project.estimator.class_name, **project.estimator.params},
            metrics=training_metrics,
            tags={
                "unified_ai.project": project.name,
                "unified_ai.data_version": data_version,
                "unified_ai.dagster_run_id": context.run_id,
                "unified_ai.trained_by": actor,
                "unified_ai.policy_version": project.policy_version,
            },
        )
        card = {
            "project": project.name,
            "estimator": project.estimator.class_name,
            "params": project.estimator.params,
            "features": {"numeric": features.numeric, "categorical": features.categorical},
            "target": project.target,
            "positive_label": project.positive_label,
            "training_metrics": training_metrics,
            "train_split_version": data_version,
            "trained_by": actor,
            "dagster_run_id": context.run_id,
            "mlflow": registered,
        }
        return dg.Output(
            TrainedModel(pipeline=pipeline, card=card),
            metadata={
                "estimator": project.estimator.class_name,
                "params": dg.MetadataValue.json(project.estimator.params),
                **{k: dg.MetadataValue.float(v) for k, v in training_metrics.items()},
                "data_version": data_version,
                "mlflow_run_id": registered["run_id"],
                "mlflow_model_version": registered["version"],
                "mlflow_model_uri": registered["model_uri"],
                "trained_by": actor,
            },
        )

    return candidate_model


def build(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    return [build_candidate_model(project)]
