"""The Dagster wiring of a model project, one package per stage of its life.

`unified_ai.stages.project.build_project` assembles them into the definitions of one project;
the `ModelProject` component and `unified_ai.definitions` call it.
"""
