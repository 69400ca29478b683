"""The `unified-ai` group and what every command shares: settings, projects, the store, errors.

Every command exits non-zero with a one-line reason on error.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import click
from click.exceptions import NoArgsIsHelpError

from unified_ai.names import DECISION_ASSETS, LOOP_ASSETS, PROJECT_ASSETS

#: What `history` shows by default: the assets whose versions a person deploys or rolls back.
ASSETS = (*LOOP_ASSETS, *DECISION_ASSETS)
ALL_ASSETS = PROJECT_ASSETS


class Context:
    """Settings of this environment, its projects and its lineage store."""

    def __init__(self):
        from unified_ai.runtime import load_settings

        self.settings = load_settings()

    def projects(self):
        from unified_ai.project_tree import load_projects

        return {p.name: p for p in load_projects(self.settings.projects_dir)}

    def project(self, name: str):
        projects = self.projects()
        if name not in projects:
            raise click.ClickException(
                f"unknown project {name!r} (known: {', '.join(sorted(projects))})"
            )
        return projects[name]

    def store(self):
        from unified_ai.io.store import LineageStore

        return LineageStore(self.settings.store_root, signing_key=self.settings.signing_key or None)


def run(fn):
    """Turn expected failures into a one-line error and exit code 1."""
    from unified_ai.cli.launch import LaunchError
    from unified_ai.io.formats import UnsupportedValueError
    from unified_ai.io.store import LineageStoreError
    from unified_ai.payloads import PayloadError
    from unified_ai.policies.rollback import RollbackError
    from unified_ai.projects.errors import ProjectConfigError
    from unified_ai.runtime import RuntimeConfigError

    try:
        return fn()
    except LaunchError as exc:
        raise click.ClickException(str(exc) + _cause(exc)) from None
    except (
        ProjectConfigError,
        RuntimeConfigError,
        LineageStoreError,
        RollbackError,
        UnsupportedValueError,
        PayloadError,
    ) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        # A file the command reads or writes (a full disk, a missing folder, no permission).
        raise click.ClickException(os_error(exc)) from None


def os_error(exc: OSError) -> str:
    """One line naming the file the error names (if any) and the reason."""
    return f"{exc.filename}: {os_reason(exc)}" if exc.filename else os_reason(exc)


def os_reason(exc: OSError) -> str:
    """Why a file operation failed, e.g. `No space left on device`."""
    return " ".join((exc.strerror or str(exc) or type(exc).__name__).split())


def _cause(exc: BaseException) -> str:
    """` (cause: ...)` naming the innermost error behind `exc`, e.g. a refused connection.

    The GraphQL client wraps an unreachable server as "Exception occured during execution of
    query"; the reason a person can act on is at the bottom of the exception chain.
    """
    root, seen = exc, {id(exc)}
    while (inner := root.__cause__ or root.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        root = inner
    if root is exc:
        return ""
    text = str(root).strip().splitlines()
    return f" (cause: {type(root).__name__}: {text[0] if text else 'no message'})"


@contextmanager
def waiting_on(url: str | None, what: str) -> Iterator[None]:
    """A spinner on stderr while a run on the webserver at `url` is awaited (terminals only)."""
    if not url:
        yield
        return
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    with console.status(f"{what} on {url} (Ctrl+C stops waiting, not the run)"):
        yield


def check_asset(asset: str) -> None:
    if asset not in ALL_ASSETS:
        raise click.ClickException(f"unknown asset {asset!r} (known: {', '.join(ALL_ASSETS)})")


#: How a state word looks in a terminal; piped or redirected output stays plain text.
STATE_STYLES = {
    "LIVE": "bold green",
    "WAITING": "bold yellow",
    "BLOCKED": "bold red",
    "ROLLED BACK": "bold magenta",
    "UNKNOWN": "dim",
}


def print_table(columns: list[str], rows: list[list[str]], title: str | None = None) -> None:
    """A table on stdout, state words (`STATE_STYLES`) in colour when stdout is a terminal."""
    # rich costs a few milliseconds to import, and only commands that print tables need it.
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", header_style="bold", box=None)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell, style=STATE_STYLES.get(cell, "")) for cell in row))
    console = Console(highlight=False)
    if not console.is_terminal:
        # Piped or redirected: one line per row, for grep and friends, instead of 80 columns.
        console = Console(highlight=False, width=100_000)
    console.print(table)


class _UsageError(click.UsageError):
    """A malformed command line, shown on one line (click's usage block spans four)."""

    def show(self, file=None) -> None:
        hint = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        click.echo(f"Error: {self.format_message()}{hint}", file=file, err=file is None)


def _one_line(exc: click.UsageError) -> click.ClickException:
    """A usage error as one line.

    A refused option or argument value (out of range, not a number, not a choice) is a refused
    input like any other: exit 1. A malformed command line (unknown or missing option or
    command) keeps click's exit code 2, so scripts can tell "called wrongly" from "refused".
    """
    if isinstance(exc, click.BadParameter) and not isinstance(exc, click.MissingParameter):
        return click.ClickException(exc.format_message())
    if isinstance(exc, (_UsageError, NoArgsIsHelpError)):
        return exc  # already one line; or a group called bare, which shows its help
    return _UsageError(exc.format_message().rstrip("."), ctx=exc.ctx)


class _Group(click.Group):
    """The `unified-ai` group: every error it reports is one line (see `_one_line`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _one_line(exc) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    package_name="unified-ai", prog_name="unified-ai", message="%(prog)s %(version)s"
)
def main() -> None:
    """unified-ai: evaluation-gated, lineage-tracked ML on Dagster."""
