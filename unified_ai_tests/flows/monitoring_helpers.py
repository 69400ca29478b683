"""Driving sensors the way the daemon does: evaluate a tick, apply its partition requests,
launch its run requests (in-process, on the same real instance)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
from click.testing import CliRunner

from unified_ai.cli import main


class Tick:
    """What one evaluation of a sensor returned."""

    def __init__(self, requests, skip, cursor):
        self.requests = requests
        self.skip = skip
        self.cursor = cursor


class SensorDriver:
    """Keeps each sensor's cursor between ticks and applies partition requests, as the daemon
    does; run requests are launched explicitly with `launch`."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance):
        self.defs = defs
        self.instance = instance
        self.cursors: dict[str, str | None] = {}

    def tick(self, name: str) -> Tick:
        sensor = self.defs.get_sensor_def(name)
        with dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursors.get(name),
            definitions=self.defs,
            resources=self.defs.resources,
            sensor_name=name,
        ) as context:
            result = sensor(context)
        if isinstance(result, dg.SkipReason):
            return Tick([], result.skip_message, self.cursors.get(name))
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(
                request.partitions_def_name, request.partition_keys
            )
        skip = result.skip_reason.skip_message if result.skip_reason else None
        self.cursors[name] = result.cursor
        return Tick(list(result.run_requests or []), skip, result.cursor)

    def launch(self, request: dg.RunRequest, default_job: str | None = None):
        job = self.defs.resolve_job_def(request.job_name or default_job)
        return job.execute_in_process(
            instance=self.instance,
            partition_key=request.partition_key,
            run_config=request.run_config or {},
            tags=request.tags,
            raise_on_error=False,
        )


def simulate(*args: str) -> str:
    result = CliRunner().invoke(main, ["simulate", *args])
    assert result.exit_code == 0, result.output
    return result.output


class Receiver:
    """A local HTTP endpoint that records the JSON bodies posted to it."""

    def __init__(self):
        self.messages: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                outer.messages.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
