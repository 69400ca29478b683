"""Dagster's defs folder for this project (`dg scaffold defs ...` writes here).

Each model project is a `unified_ai.ModelProject` component in its own folder (`<name>/defs.yaml`);
any other definitions placed here are loaded too.
"""
