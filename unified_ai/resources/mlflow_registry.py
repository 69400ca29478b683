"""MLflow tracking and model registry behind one small interface.

MLflow is imported only when a method runs. Every MLflow run is closed, FINISHED or FAILED,
whatever happens inside it.
"""

from pathlib import Path
from typing import Any

import dagster as dg

from unified_ai.lifetime import import_kept

CHAMPION = "champion"
#: Run tags that tie an MLflow run to the Dagster run it belongs to.
DAGSTER_RUN_TAG = "dagster_run_id"
DAGSTER_RUN_URL_TAG = "dagster_run_url"
#: Requirements recorded with each logged model; listing them avoids MLflow's slow inference.
_PIP_REQUIREMENTS = ["scikit-learn", "skops", "pandas", "numpy"]


def telemetry_off() -> None:
    """Switch MLflow's usage telemetry off in this process, without touching the environment.

    MLflow 3 turns telemetry on when it is imported (it reaches out to the network) and offers
    no setting for it but its environment variable, read at import and at every call. Without
    its client, nothing is recorded or sent: every telemetry call of MLflow 3.17 asks for the
    client first and skips when there is none.
    """
    from mlflow.telemetry import client

    client._set_telemetry_client(None)


class MlflowRegistry(dg.ConfigurableResource):
    """Logs training runs, registers model versions and moves the `champion` alias.

    Attributes:
        tracking_uri: MLflow tracking (and registry) URI, e.g. `sqlite:///.unified_ai/mlflow.db`.
        artifact_root: Where new experiments store artifacts (a folder or object-store URL);
            defaults to MLflow's own choice when empty.
        ui_url: Base URL of the MLflow UI that artifact links point to ("" = no links).
        dagster_ui_url: Base URL of the Dagster UI that MLflow runs link back to.
        telemetry: Whether MLflow may send usage telemetry (`Settings.mlflow_telemetry`: only
            when the user allows it).
    """

    tracking_uri: str
    artifact_root: str = ""
    ui_url: str = ""
    dagster_ui_url: str = ""
    telemetry: bool = False

    def _mlflow(self):
        import_kept("mlflow", "mlflow")
        import mlflow

        if not self.telemetry:
            telemetry_off()

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
        dagster_run_id: str | None = None,
    ) -> dict[str, str]:
        """Log a training run with its model and register a new model version.

        With `dagster_run_id`, the model goes into that Dagster run's one MLflow run (tagged
        with the run id and a link back to its Dagster page).

        Returns:
            The MLflow run id, registered version and model URI.
        """
        mlflow = self._mlflow()
        is_onnx = getattr(pipeline, "is_onnx", False)
        if not is_onnx:
            import skops.io as sio

            trusted = sio.get_untrusted_types(data=sio.dumps(pipeline))
        experiment_id = self._experiment_id(experiment)
        existing = self._run_of(experiment_id, dagster_run_id) if dagster_run_id else None
        with mlflow.start_run(run_id=existing, experiment_id=experiment_id) as run:
            if dagster_run_id:
                mlflow.set_tags(self._dagster_tags(dagster_run_id))
            mlflow.set_tags(tags)
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
            if is_onnx:
                # A model from another framework, handed back (and verified) as ONNX.
                import onnx
                from mlflow import onnx as mlflow_onnx

                info = mlflow_onnx.log_model(
                    onnx.load_model_from_string(pipeline.data),
                    name="model",
                    registered_model_name=model_name,
                    pip_requirements=["onnx", "onnxruntime", "numpy"],
                )
            else:
                from mlflow import sklearn as mlflow_sklearn

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

    def _run_of(self, experiment_id: str, dagster_run_id: str) -> str | None:
        """The MLflow run already opened for this Dagster run, if any."""
        runs = self.client().search_runs(
            [experiment_id], filter_string=f"tags.{DAGSTER_RUN_TAG} = '{dagster_run_id}'"
        )
        return runs[0].info.run_id if runs else None

    def _dagster_tags(self, dagster_run_id: str) -> dict[str, str]:
        tags = {DAGSTER_RUN_TAG: dagster_run_id}
        if self.dagster_ui_url:
            url = f"{self.dagster_ui_url.rstrip('/')}/runs/{dagster_run_id}"
            tags[DAGSTER_RUN_URL_TAG] = url
            # MLflow renders the note as markdown on the run page: a clickable way back.
            tags["mlflow.note.content"] = f"Dagster run [{dagster_run_id}]({url})"
        return tags

    def artifact_url(self, run_id: str, path: str) -> str | None:
        """The MLflow UI page of one artifact of a run, or None without a UI base URL."""
        if not self.ui_url:
            return None
        experiment_id = self.client().get_run(run_id).info.experiment_id
        base = self.ui_url.rstrip("/")
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}/artifacts/{path}"

    def log_report(
        self,
        run_id: str,
        *,
        folder: str,
        files: dict[str, str | bytes],
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, str]:
        """Log report files (HTML pages, PNG plots) and metrics to an existing run.

        Args:
            run_id: The MLflow run (the model's run).
            folder: Artifact folder inside the run, e.g. `evaluation/<report version>`.
            files: File name → text or bytes.
            metrics: Metrics to log on the run (None values are skipped).
            tags: Run tags to set.

        Returns:
            File name → MLflow UI URL of the logged artifact (empty without a UI base URL).
        """
        import tempfile

        client = self.client()
        for name, value in (metrics or {}).items():
            if value is not None:
                client.log_metric(run_id, name, float(value))
        for name, tag in (tags or {}).items():
            client.set_tag(run_id, name, tag)
        with tempfile.TemporaryDirectory() as tmp:
            for name, content in files.items():
                path = Path(tmp) / name
                if isinstance(content, str):
                    path.write_text(content, encoding="utf-8")
                else:
                    path.write_bytes(content)
            client.log_artifacts(run_id, tmp, artifact_path=folder)
        links = {}
        for name in files:
            url = self.artifact_url(run_id, f"{folder}/{name}")
            if url:
                links[name] = url
        return links

    def tag_version(self, model_name: str, version: str, tags: dict[str, str]) -> None:
        """Set tags on a registered model version (gate results, approvals, deployments)."""
        client = self.client()
        for name, value in tags.items():
            client.set_model_version_tag(model_name, version, name, str(value)[:5000])

    def describe_version(self, model_name: str, version: str, description: str) -> None:
        """Set a registered model version's description (its model card, markdown)."""
        self.client().update_model_version(model_name, version, description=description)

    def record_deployment(
        self, model_name: str, deployment: dict[str, Any], *, previous: str | None
    ) -> None:
        """Tag the deployed version (and the champion it replaces) with the deployment."""
        version = str(deployment["mlflow_model_version"])
        self.tag_version(
            model_name,
            version,
            {
                "deployment.status": "champion",
                "deployment.deployed_at": deployment.get("deployed_at") or "",
                "deployment.deployed_by": deployment.get("deployed_by") or "",
                "deployment.dagster_run_id": deployment.get("dagster_run_id") or "",
                "deployment.evaluation_report_version": deployment.get("evaluation_report_version")
                or "",
                "deployment.approval": (deployment.get("approval") or {}).get("reason", ""),
            },
        )
        if previous and previous != version:
            self.tag_version(
                model_name,
                previous,
                {"deployment.status": "replaced", "deployment.replaced_by": version},
            )

    def record_approval(self, model_name: str, version: str, approval: dict[str, Any]) -> None:
        """Tag a version with a person's decision on it (valid or not)."""
        valid = bool(approval.get("valid"))
        self.tag_version(
            model_name,
            version,
            {
                "approval.decision": approval.get("decision", "") if valid else "invalid",
                "approval.approver": approval.get("approver", ""),
                "approval.at": approval.get("at", ""),
                "approval.reason": approval.get("comment") or approval.get("invalid_reason") or "",
                "approval.dagster_run_id": approval.get("dagster_run_id") or "",
            },
        )

    def record_rollback(
        self,
        model_name: str,
        *,
        from_version: str | None,
        to_version: str | None,
        reason: str,
        actor: str,
        at: str,
    ) -> None:
        """Tag the version rolled back from and the one restored."""
        if from_version and from_version != to_version:
            self.tag_version(
                model_name,
                from_version,
                {
                    "deployment.status": "rolled back",
                    "rollback.reason": reason,
                    "rollback.by": actor,
                    "rollback.at": at,
                    "rollback.restored": to_version or "",
                },
            )
        if to_version:
            self.tag_version(
                model_name,
                to_version,
                {"deployment.status": "champion (restored by rollback)", "rollback.at": at},
            )
