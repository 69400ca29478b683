"""What assets hand each other through the store, as frozen typed records.

Each record has one writer (`to_payload`, or `to_body` for the evaluation report) and one reader
(`from_payload`/`from_body`). They are stored as JSON objects, exactly the shape earlier versions
stored, so every stored version stays readable: a reader ignores fields it does not know and
refuses, in one line naming the asset@version and the field, a payload that lacks one it needs.
Pure: no Dagster import.
"""

from unified_ai.payloads.approval import Approval, ApprovalRecord
from unified_ai.payloads.deployment import Deployment, Incident
from unified_ai.payloads.evaluation import EvaluationReport, ModelSummary, Registration
from unified_ai.payloads.metadata import NONE, DriftSummary, LiveSummary
from unified_ai.payloads.reading import PayloadError

__all__ = [
    "NONE",
    "Approval",
    "ApprovalRecord",
    "Deployment",
    "DriftSummary",
    "EvaluationReport",
    "Incident",
    "LiveSummary",
    "ModelSummary",
    "PayloadError",
    "Registration",
]
