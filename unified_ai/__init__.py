"""unified_ai: a Dagster code location for evaluation-gated, lineage-tracked ML systems."""

__version__ = "0.1.0"
