"""Prometheus metrics of the serving endpoint, in a registry of its own (one per app)."""

from typing import Any

#: Latency buckets (seconds): a single row takes milliseconds, a large request up to seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServingMetrics:
    """Requests, errors, latency, the served version, swaps and traffic written to the inbox.

    Args:
        project: The project served; every series carries it as the `project` label.
    """

    def __init__(self, project: str):
        from prometheus_client import CollectorRegistry

        self.project = project
        self.registry = CollectorRegistry(auto_describe=True)
        # Registered in this order (the order of the exposition).
        in_flight = self._register_requests()
        swaps, load_failures = self._register_deployment()
        traffic_rows, traffic_errors, traffic_dropped, inbox_bytes = self._register_traffic()
        self.model.labels(project=project).info({"deployment_version": "", "model_version": ""})
        self.ready.labels(project=project).set(0)
        # Children bound to the project, so callers just `.inc()`.
        self.traffic_rows = traffic_rows.labels(project=project)
        self.traffic_errors = traffic_errors.labels(project=project)
        self.traffic_dropped = traffic_dropped.labels(project=project)
        self.swaps = swaps.labels(project=project)
        self.load_failures = load_failures.labels(project=project)
        self.in_flight = in_flight.labels(project=project)
        self.inbox_bytes = inbox_bytes.labels(project=project)
        # Per (endpoint, status): its request counter and latency histogram, looked up once
        # (`labels` costs microseconds a request). Bounded: endpoints are named by the app.
        self._answered: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._scored: dict[str, Any] = {}

    def _register_requests(self) -> Any:
        """Requests, errors and latency by endpoint; the in-flight gauge (returned)."""
        from prometheus_client import Counter, Gauge, Histogram

        common: dict[str, Any] = {"registry": self.registry}
        self.requests = Counter(
            "unified_ai_serving_requests",
            "HTTP requests answered, by endpoint and status code.",
            ["project", "endpoint", "code"],
            **common,
        )
        self.errors = Counter(
            "unified_ai_serving_errors",
            "Requests answered with an error, by endpoint and reason "
            "(invalid_rows, unknown_rows, too_large, busy, not_ready, bad_request, not_found, "
            "unauthorized, forbidden, unsupported_media_type, rate_limited, inbox_full, "
            "body_timeout, internal).",
            ["project", "endpoint", "reason"],
            **common,
        )
        self.latency = Histogram(
            "unified_ai_serving_request_duration_seconds",
            "Time from request to response, by endpoint.",
            ["project", "endpoint"],
            buckets=LATENCY_BUCKETS,
            **common,
        )
        in_flight = Gauge(
            "unified_ai_serving_requests_in_flight",
            "Requests being handled now.",
            ["project"],
            **common,
        )
        return in_flight

    def _register_deployment(self) -> tuple[Any, Any]:
        """Rows scored, the served deployment, readiness; swaps and load failures (returned)."""
        from prometheus_client import Counter, Gauge, Info

        common: dict[str, Any] = {"registry": self.registry}
        self.rows = Counter(
            "unified_ai_serving_rows", "Rows scored.", ["project", "deployment_version"], **common
        )
        self.model = Info(
            "unified_ai_serving_model",
            "The deployment being served (deployment_version, model_version).",
            ["project"],
            **common,
        )
        self.ready = Gauge(
            "unified_ai_serving_ready",
            "1 once a deployed model is loaded and verified, else 0.",
            ["project"],
            **common,
        )
        swaps = Counter(
            "unified_ai_serving_swaps", "Deployments swapped in.", ["project"], **common
        )
        load_failures = Counter(
            "unified_ai_serving_load_failures",
            "Deployments that could not be loaded (the previous one kept serving).",
            ["project"],
            **common,
        )
        return swaps, load_failures

    def _register_traffic(self) -> tuple[Any, Any, Any, Any]:
        """Traffic written to the inbox: rows written, write errors, rows dropped, inbox bytes."""
        from prometheus_client import Counter, Gauge

        common: dict[str, Any] = {"registry": self.registry}
        traffic_rows = Counter(
            "unified_ai_serving_traffic_rows_written",
            "Served rows written to the inbox as batch files.",
            ["project"],
            **common,
        )
        traffic_errors = Counter(
            "unified_ai_serving_traffic_write_errors",
            "Failed attempts to write a batch file to the inbox (rows kept and retried).",
            ["project"],
            **common,
        )
        traffic_dropped = Counter(
            "unified_ai_serving_traffic_rows_dropped",
            "Served rows that never reached the inbox: the inbox was not written fast enough "
            "(or could not be written), or it reached its byte quota.",
            ["project"],
            **common,
        )
        inbox_bytes = Gauge(
            "unified_ai_serving_inbox_bytes",
            "Bytes under the project's inbox folder, as last measured (its quota is "
            "--max-inbox-bytes; beyond it served rows are dropped and labels refused).",
            ["project"],
            **common,
        )
        return traffic_rows, traffic_errors, traffic_dropped, inbox_bytes

    def served(self, deployment_version: str, model_version: str) -> None:
        """Record a swap: the info metric names the new deployment."""
        self.model.labels(project=self.project).info(
            {"deployment_version": deployment_version, "model_version": model_version}
        )
        self.ready.labels(project=self.project).set(1)
        self.swaps.inc()

    def observe(self, endpoint: str, code: int, seconds: float) -> None:
        children = self._answered.get((endpoint, code))
        if children is None:
            project = self.project
            children = self._answered[(endpoint, code)] = (
                self.requests.labels(project=project, endpoint=endpoint, code=str(code)),
                self.latency.labels(project=project, endpoint=endpoint),
            )
        children[0].inc()
        children[1].observe(seconds)

    def scored(self, deployment_version: str, rows: int) -> None:
        """Count `rows` scored by `deployment_version`."""
        child = self._scored.get(deployment_version)
        if child is None:
            if len(self._scored) >= 8:  # deployments come and go: keep the last few
                self._scored.clear()
            child = self._scored[deployment_version] = self.rows.labels(
                project=self.project, deployment_version=deployment_version
            )
        child.inc(rows)

    def error(self, endpoint: str, reason: str) -> None:
        self.errors.labels(project=self.project, endpoint=endpoint, reason=reason).inc()

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
