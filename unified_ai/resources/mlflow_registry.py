"""MLflow tracking and model registry behind one small interface.

MLflow is imported only when a method runs. Every MLflow run is closed, FINISHED or FAILED,
whatever happens inside it.
"""

import os
from pathlib import Path
from typing import Any

import dagster as dg

CHAMPION = "champion"
#: Requirements recorded with each logged model; listing them avoids MLflow's slow inference.
_PIP_REQUIREMENTS = ["scikit-learn", "skops", "pandas", "numpy"]


class MlflowRegistry(dg.ConfigurableResource):
    """Logs training runs, registers model versions and moves the `champion` alias.

    Attributes:
        tracking_uri: MLflow tracking (and registry) URI, e.g. `sqlite:///.unified_ai/mlflow.db`.
        artifact_root: Where new experiments store artifacts (a folder or object-store URL);
            defaults to MLflow's own choice when empty.
    """

    tracking_uri: str
    artifact_root: str = ""

    def _mlflow(self):
        # Telemetry is on by default in MLflow 3 and reaches out to the network.
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        import mlflow

        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True
            )
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return mlflow

    def client(self):
        mlflow = self._mlflow()
        return mlflow.MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def _experiment_id(self, name: str) -> str:
        mlflow = self._mlflow()
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = self.artifact_root.rstrip("/") + "/" + name if self.artifact_root else None
        return mlflow.create_experiment(name, artifact_location=location)

    def log_and_register(
        self,
        *,
        model_name: str,
        experiment: str,
        pipeline: Any,
        params: dict[str, Any],
        metrics: dict[str, float],
        tags: dict[str, str],
    ) -> dict[str, str]:
        """Log a training run with its model and register a new model version.

        Returns:
            The MLflow run id, registered version and model URI.
        """
        mlflow = self._mlflow()
        import skops.io as sio
        from mlflow import sklearn as mlflow_sklearn

        trusted = sio.get_untrusted_types(data=sio.dumps(pipeline))
        with mlflow.start_run(experiment_id=self._experiment_id(experiment)) as run:
            mlflow.set_tags(tags)
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
            info = mlflow_sklearn.log_model(
                pipeline,
                name="model",
                registered_model_name=model_name,
                serialization_format="skops",
                skops_trusted_types=trusted,
                pip_requirements=_PIP_REQUIREMENTS,
            )
        version = str(info.registered_model_version)
        return {
            "run_id": run.info.run_id,
            "version": version,
            "model_uri": f"models:/{model_name}/{version}",
        }

    def champion_version(self, model_name: str) -> str | None:
        """The version the `champion` alias points at, or None."""
        from mlflow.exceptions import MlflowException

        client = self.client()
        try:
            return str(client.get_model_version_by_alias(model_name, CHAMPION).version)
        except MlflowException:
            return None

    def set_champion(self, model_name: str, version: str) -> None:
        self.client().set_registered_model_alias(model_name, CHAMPION, version)
