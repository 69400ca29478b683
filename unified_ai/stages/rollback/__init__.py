"""Rollback, in one place.

- `choose`: which earlier deployment a rollback restores (pure decision over lazy lookups);
- `perform`: validating it, then moving the MLflow alias and the deployment pointer;
- `jobs`: the rollback job, its run config, and the run request automations launch;
- `assets`: `incidents`, the record every rollback leaves behind.

`deployed_model` with `action: rollback` calls `perform`.
"""
