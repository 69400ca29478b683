"""Training as an external process, driven through Dagster Pipes.

Run by `candidate_model` when a project sets `training.runner: pipes` (a subprocess locally,
its own pod on Kubernetes). It reads the train split and the project from the Pipes extras,
fits the project's pipeline, writes the model (skops) where it is told, and reports the
training metrics back. It imports no Dagster orchestration code: only `dagster_pipes`.
"""


def main() -> None:
    import fsspec
    import pandas as pd
    from dagster_pipes import open_dagster_pipes

    from unified_ai.io.formats import dump_model
    from unified_ai.ml.data import binary_target
    from unified_ai.ml.evaluation import classification_metrics
    from unified_ai.ml.training import fit, predict_proba
    from unified_ai.projects.schema import ProjectConfig

    with open_dagster_pipes() as pipes:
        extras = pipes.extras
        project = ProjectConfig.model_validate(extras["project"])
        options = extras.get("storage_options") or {}
        with fsspec.open(extras["data_uri"], "rb", **options) as handle:
            train = pd.read_parquet(handle)
        pipes.log.info(f"training {project.estimator.class_name} on {len(train)} rows")
        pipeline, features = fit(project, train)
        metrics = classification_metrics(
            binary_target(project, train).to_numpy(),
            predict_proba(pipeline, train, features),
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


if __name__ == "__main__":
    main()
