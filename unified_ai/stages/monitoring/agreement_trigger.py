"""The agreement trigger: retrain when reviewers agree with the deployed model too seldom.

Decided on the same `live_performance` event the performance trigger reads, after it: a
rollback or a retrain for the live floor comes first, and a rollback still waiting for paired
rows holds this too. The rule is `unified_ai.policies.agreement_trigger`'s; it has its own
cooldown (`last_agreement` in the performance trigger's cursor) and run key.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import dagster as dg

from unified_ai.ml.agreement import AGREEMENT_METADATA
from unified_ai.names import training_loop_job
from unified_ai.policies.agreement_trigger import AgreementEvidence, agreement_decision
from unified_ai.policies.triggers import LastRetrain, NewLabels, reproduces_last_model
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.notifications import Notifier
from unified_ai.stages.monitoring.retrain_request import request_retrain
from unified_ai.stages.sensor_kit import parse_time

#: The cursor entry holding when the agreement trigger last asked for a retrain.
LAST_AGREEMENT = "last_agreement"


def agreement_evidence(values: Mapping[str, Any]) -> AgreementEvidence | None:
    """The agreement a `live_performance` event recorded, or None (no `policy.review`)."""
    report = values.get(AGREEMENT_METADATA)
    if not isinstance(report, Mapping):
        return None
    return AgreementEvidence.from_report(report)


def agreement_retrain(
    context: dg.SensorEvaluationContext,
    project: ProjectConfig,
    notifier: Notifier,
    found: AgreementEvidence,
    *,
    labels: NewLabels,
    retrained: LastRetrain | None,
    cursor: dict,
    event: int,
    now: datetime,
) -> dg.SensorResult | str:
    """Request a retrain when agreement is below the floor; else why not, in words."""
    decision = agreement_decision(
        project.policy.triggers.agreement,
        found,
        last_trigger=parse_time(cursor.get(LAST_AGREEMENT)),
        now=now,
        last_retrain=retrained,
    )
    if not decision.act:
        return f"agreement: {decision.reason}"
    same = reproduces_last_model(labels, retrained)
    if same is not None:
        return f"agreement: {decision.reason}, but {same}"
    cursor[LAST_AGREEMENT] = now.isoformat()
    return request_retrain(
        context,
        project,
        notifier,
        decision,
        cursor=cursor,
        run_key=f"agreement:{event}",
        actor="agreement_trigger",
        kind="agreement_below_floor",
        job_name=training_loop_job(project.name),
    )
