"""The serving endpoint: scores rows with whatever a project has deployed right now.

`follower` watches the project's `deployed_model` pointer in the lineage store and swaps the
served model in when it moves; `traffic` writes served rows into the project's inbox as
production batches; `metrics` exposes Prometheus metrics; `app` is the HTTP service.

Nothing on the code location's load path imports this package (the CLI imports it inside the
`serve` command), so its web framework never slows down loading definitions.
"""
