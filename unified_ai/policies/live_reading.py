"""The evidence the performance trigger weighs, read from what `live_performance` recorded."""

from datetime import datetime

from unified_ai.payloads import LiveSummary
from unified_ai.policies.triggers import LiveEvidence


def live_evidence(summary: LiveSummary, *, deployed_at: datetime | None) -> LiveEvidence:
    """The deployed model's live evidence from the `live_performance` summary.

    Args:
        summary: The newest `live_performance` metadata, read.
        deployed_at: When the measured deployment was made (`summary.deployed_at`, parsed).
    """
    return LiveEvidence(
        metric=summary.metric,
        deployment=summary.deployment_version,
        value=summary.value,
        ci_high=summary.ci_high,
        labeled_rows=summary.labeled_rows,
        deployed_at=deployed_at,
        previous_deployment=summary.previous_deployment,
        previous_value=summary.previous_value,
        paired_deployment=summary.paired_deployment,
        paired_rows=summary.paired_rows,
        paired_value=summary.paired_value,
        paired_previous_value=summary.paired_previous_value,
        paired_difference=summary.paired_difference,
        paired_ci_high=summary.paired_ci_high,
        paired_ci_low=summary.paired_ci_low,
        recent_paired_batches=summary.recent_paired_batches,
        recent_paired_rows=summary.recent_paired_rows,
        recent_paired_value=summary.recent_paired_value,
        recent_paired_previous_value=summary.recent_paired_previous_value,
        recent_paired_difference=summary.recent_paired_difference,
        recent_paired_ci_high=summary.recent_paired_ci_high,
        recent_paired_ci_low=summary.recent_paired_ci_low,
        recent_batches=summary.recent_batches,
        recent_rows=summary.recent_rows,
        recent_value=summary.recent_value,
    )
