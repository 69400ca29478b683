"""The floor's code location: three trivial assets, on the executor the product uses.

A batch run is compared with a run of this job launched the same way (the same webserver,
instance, run launcher and executor): what is left is the cost of our own work.
"""

import dagster as dg

FLOOR_JOB = "floor_job"


@dg.asset
def floor_first() -> int:
    return 1


@dg.asset
def floor_second(floor_first: int) -> int:
    return floor_first + 1


@dg.asset
def floor_third(floor_second: int) -> int:
    return floor_second + 1


defs = dg.Definitions(
    assets=[floor_first, floor_second, floor_third],
    jobs=[dg.define_asset_job(FLOOR_JOB, selection=dg.AssetSelection.all())],
    executor=dg.in_process_executor,
)
