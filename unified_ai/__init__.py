"""unified_ai: a Dagster code location for evaluation-gated, lineage-tracked ML systems."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # `type: unified_ai.ModelProject` in a defs.yaml and dg's component registry find the
    # component here; Dagster is imported only then, so the pure modules stay free of it.
    if name == "ModelProject":
        from unified_ai.components import ModelProject

        return ModelProject
    raise AttributeError(f"module 'unified_ai' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "ModelProject"])
