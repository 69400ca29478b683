"""Ticking a project's gate outcome sensor on a real instance, the way the daemon does."""

import dagster as dg

from unified_ai.projects.schema import ProjectConfig
from unified_ai.stages.evaluation.sensors import build_evaluation_sensor_defs


class GateOutcomes:
    """The gate outcome sensor of `project`, built by the evaluation stage's build function.

    Each tick evaluates it on the instance with the code location's resources (or `resources`)
    and keeps its cursor for the next tick. Creating the driver is the sensor's first tick:
    runs that ended before it are history, as when the daemon starts the sensor.
    """

    def __init__(
        self,
        defs: dg.Definitions,
        instance: dg.DagsterInstance,
        project: ProjectConfig,
        resources: dict | None = None,
    ):
        [self.sensor] = build_evaluation_sensor_defs(project)
        self.instance = instance
        self.resources = dict(defs.resources or {}) if resources is None else resources
        self.cursor: str | None = None
        self.tick()

    def tick(self, resources: dict | None = None) -> str:
        """Evaluate the sensor once; returns what the tick reported."""
        with dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources=self.resources if resources is None else resources,
            sensor_name=self.sensor.name,
        ) as context:
            result = self.sensor(context)
        assert isinstance(result, dg.SensorResult) and not result.run_requests
        self.cursor = result.cursor
        return result.skip_reason.skip_message if result.skip_reason else ""
