"""Incidents: the record every rollback leaves behind."""

import dagster as dg

from unified_ai.io.store import utc_now
from unified_ai.names import (
    DEPLOYED_MODEL,
    INCIDENTS,
    ROLLBACK_ACTION,
    TRIGGER_METADATA,
)
from unified_ai.payloads import Incident
from unified_ai.projects.schema import ProjectConfig
from unified_ai.queries import deployment_summary
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.common import asset_metadata, key, stage_tags


def build_incidents(project: ProjectConfig) -> dg.AssetsDefinition:
    deployed_key = key(project, DEPLOYED_MODEL)

    @dg.asset(
        key=key(project, INCIDENTS),
        deps=[deployed_key],
        tags=stage_tags("rollback"),
        description="One record per rollback: both deployments with their evaluation reports, "
        "the reason, who or what triggered it, and live metrics when present. Materialized only "
        "by runs that roll back.",
        metadata=asset_metadata(project),
        kinds={"json"},
        output_required=False,
    )
    def incidents(context: dg.AssetExecutionContext, lineage: LineageStorage):
        reader = lineage.reader(context)
        latest = next(reader.history_newest_first(deployed_key.path), None)
        if latest is None or latest.action != ROLLBACK_ACTION or latest.run_id != context.run_id:
            context.log.info("no rollback happened in this run, so there is no incident")
            return
        if latest.previous is None:  # `perform_rollback` refuses when nothing is deployed
            raise dg.Failure(f"the rollback to {latest.version} records no previous deployment")
        event = context.instance.get_latest_materialization_event(deployed_key)
        metadata = event.asset_materialization.metadata if event else {}
        trigger = metadata.get(TRIGGER_METADATA)
        incident = Incident(
            project=project.name,
            kind=ROLLBACK_ACTION,
            opened_at=utc_now(),
            reason=latest.reason,
            trigger=trigger.value if trigger else "manual",
            actor=latest.actor,
            dagster_run_id=context.run_id,
            policy_version=project.policy_version,
            rolled_back_from=deployment_summary(reader, project.name, latest.previous),
            rolled_back_to=deployment_summary(reader, project.name, latest.version),
            live_metrics=None,
        )
        yield dg.Output(
            incident.to_payload(),
            metadata={
                "reason": latest.reason or "",
                "trigger": incident.trigger,
                "rolled_back_from": latest.previous,
                "rolled_back_to": latest.version,
            },
        )

    return incidents


def build_rollback_asset_defs(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    return [build_incidents(project)]
