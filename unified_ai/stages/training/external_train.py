"""Training as an external process, driven through Dagster Pipes.

Run by `candidate_model` when a project sets `training.runner: pipes` (a subprocess locally,
its own pod on Kubernetes). It reads the train split and the project from the Pipes extras,
fits the project's pipeline, writes the model (skops) where it is told, and reports the
training metrics back. It imports no Dagster orchestration code: only `dagster_pipes`.

A script of a project's own (`training.script`) may train with any framework and hand back an
ONNX model instead (`hand_back_onnx`): it writes the ONNX bytes where the skops file would go
and reports `model_format: onnx` with its own framework's predictions for the probe rows
(`unified_ai.ml.onnx_model.probe_rows`: the model inputs of the train split's first rows). The
step accepts the model only if onnxruntime reproduces those predictions.
"""

from typing import Any

from unified_ai.ml.artifacts import TrainedModel
from unified_ai.ml.metrics import task_metrics
from unified_ai.ml.onnx_model import FORMAT_KEY, PREDICTIONS_KEY
from unified_ai.ml.targets import encode_target
from unified_ai.ml.training import fit, predict, task_card


def main() -> None:
    import fsspec
    from dagster_pipes import open_dagster_pipes

    from unified_ai.io.formats import dump_model

    with open_dagster_pipes() as pipes:
        extras = pipes.extras
        project, train = read_train(pipes)
        options = extras.get("storage_options") or {}
        pipes.log.info(f"training {project.estimator.class_name} on {len(train)} rows")
        pipeline, features = fit(project, train)
        # Scored as the stored model will be: the task and class order decide the shape.
        task = task_card(project, train)
        scored = TrainedModel(pipeline=pipeline, card=dict(task))
        metrics = task_metrics(
            project.task,
            encode_target(project, train, task.get("classes")),
            predict(scored, train, features),
            project.evaluation.threshold,
        )
        # Encoded (and checked against the types the step will accept) before anything is
        # written, so a pipeline the step would refuse fails here, naming its types.
        data = dump_model(pipeline)
        with fsspec.open(extras["model_uri"], "wb", **options) as handle:
            handle.write(data)
        pipes.report_asset_materialization(
            metadata={
                **{f"train_{k}": v for k, v in metrics.items() if v is not None},
                "features": {
                    "raw_value": {"numeric": features.numeric, "categorical": features.categorical},
                    "type": "json",
                },
            }
        )


def read_train(pipes: Any) -> tuple[Any, Any]:
    """(the project, the train split) a Pipes training process is given."""
    import fsspec
    import pandas as pd

    from unified_ai.projects.schema import ProjectConfig

    extras = pipes.extras
    project = ProjectConfig.model_validate(extras["project"])
    options = extras.get("storage_options") or {}
    with fsspec.open(extras["data_uri"], "rb", **options) as handle:
        train = pd.read_parquet(handle)
    return project, train


def hand_back_onnx(
    pipes: Any,
    *,
    onnx_bytes: bytes,
    probe_predictions: Any,
    numeric: list[str],
    categorical: list[str],
    metrics: dict[str, float] | None = None,
) -> None:
    """Hand an ONNX model back to the step, with the script's own predictions to verify it.

    Args:
        pipes: The open Pipes context.
        onnx_bytes: The serialized ONNX model (see `unified_ai.ml.onnx_model` for how the
            feature columns are fed to its inputs).
        probe_predictions: The training framework's predictions for
            `probe_rows(train, numeric, categorical)`, in the task's shape.
        numeric: The numeric feature columns the model takes.
        categorical: The categorical feature columns the model takes.
        metrics: Training metrics (reported as `train_<name>`).
    """
    import fsspec
    import numpy as np

    options = pipes.extras.get("storage_options") or {}
    with fsspec.open(pipes.extras["model_uri"], "wb", **options) as handle:
        handle.write(onnx_bytes)
    predictions = np.asarray(probe_predictions, dtype="float64").tolist()
    pipes.report_asset_materialization(
        metadata={
            **{f"train_{k}": float(v) for k, v in (metrics or {}).items() if v is not None},
            "features": {
                "raw_value": {"numeric": list(numeric), "categorical": list(categorical)},
                "type": "json",
            },
            FORMAT_KEY: "onnx",
            PREDICTIONS_KEY: {"raw_value": predictions, "type": "json"},
        }
    )


if __name__ == "__main__":
    main()
