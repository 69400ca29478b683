"""The error a project file's reader raises, importable without the schema.

The command line catches it around every command; importing it from here costs nothing, while
the reader (`unified_ai.projects.loader`) loads the pydantic schema (about 0.3 s).
"""


class ProjectConfigError(ValueError):
    """A project file is unreadable or invalid."""
