"""The serving endpoint: scores rows with whatever a project has deployed right now.

`follower` watches the project's `deployed_model` pointer in the lineage store and swaps the
served model in when it moves; `traffic` writes served rows into the project's inbox as
production batches (`inbox_files`: row ids and label files); `metrics` exposes Prometheus
metrics. The HTTP service is `service` (`ServingService`: the work and every refusal, without
HTTP), `answers` (what a row's answer holds for the project's task: binary, multiclass or
regression), `plain_rows` (a request's rows checked and typed on plain values, with the batch
path's rules: no DataFrame on a request's way), `routes` (thin FastAPI handlers), `schemas`
(what the OpenAPI document declares), `body` (reading a request), `options` (`ServeOptions`)
and `app` (`create_app` wires them with the middleware, lifespan and error handlers; `run`
serves; `workers` serves with several processes, each following the deployment). What a
client may do and make the service write is bounded by `auth` (a bearer token for writes),
`limits` and `labels` (JSON only, bounded text, labels only for rows that exist, per-minute
caps) and `server` (header deadline, header size and connection caps); `docs` is the offline
`/docs` page.

Nothing on the code location's load path imports this package (the CLI imports it inside the
`serve` command), so its web framework never slows down loading definitions.
"""
