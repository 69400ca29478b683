"""Deployment: promote the evaluated candidate to champion, only if every gate passed."""

import dagster as dg

from unified_ai.defs.gate_records import require_gates
from unified_ai.defs.keys import DEPLOYED_MODEL, EVALUATION_REPORT, asset_metadata, key, run_actor
from unified_ai.io.store import utc_now
from unified_ai.policies.gates import GATES
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.mlflow_registry import CHAMPION, MlflowRegistry
from unified_ai.resources.storage import LineageStorage


def build_deployed_model(project: ProjectConfig) -> dg.AssetsDefinition:
    report_key = key(project, EVALUATION_REPORT)

    @dg.asset(
        key=key(project, DEPLOYED_MODEL),
        ins={"evaluation_report": dg.AssetIn(key=report_key)},
        group_name="deployment",
        description="The deployment manifest of the champion: model version, evaluation report "
        "and policy. Refuses to deploy unless every gate passed on the current report.",
        metadata=asset_metadata(project),
        kinds={"mlflow", "json"},
    )
    def deployed_model(
        context: dg.AssetExecutionContext,
        mlflow: MlflowRegistry,
        lineage: LineageStorage,
        evaluation_report,
    ):
        report_version = lineage.store().require_current(report_key.path)
        # Re-check the gates ourselves: a run that selects only this asset skips the checks.
        require_gates(context.instance, report_key, report_version, GATES)
        candidate = evaluation_report.body["candidate"]
        registered = candidate["mlflow"]
        previous = mlflow.champion_version(project.model_name)
        mlflow.set_champion(project.model_name, registered["version"])
        manifest = {
            "project": project.name,
            "model_version": candidate["model_version"],
            "model_uri": registered["model_uri"],
            "mlflow_model_version": registered["version"],
            "mlflow_run_id": registered["run_id"],
            "mlflow_alias": CHAMPION,
            "evaluation_report_version": report_version,
            "policy_version": project.policy_version,
            "metrics": candidate["metrics"],
            "deployed_at": utc_now(),
            "deployed_by": run_actor(context),
            "dagster_run_id": context.run_id,
            "previous_mlflow_champion": previous,
        }
        return dg.Output(
            manifest,
            metadata={
                "model_version": candidate["model_version"],
                "model_uri": registered["model_uri"],
                "evaluation_report_version": report_version,
                "policy_version": project.policy_version,
                "previous_mlflow_champion": previous or "none",
            },
        )

    return deployed_model


def build(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    return [build_deployed_model(project)]
