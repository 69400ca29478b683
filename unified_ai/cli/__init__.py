"""The `unified-ai` command line, one module per group of commands.

`app` holds the group and what commands share; `projects`, `lineage`, `decisions`, `reports`,
`review` and `traffic` add their commands to it when imported here.
"""

from unified_ai.cli import decisions, export, lineage, projects, reports, review, traffic
from unified_ai.cli.app import main

__all__ = ["decisions", "export", "lineage", "main", "projects", "reports", "review", "traffic"]
