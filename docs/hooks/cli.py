"""MkDocs hook: the command reference, rendered from the `unified-ai` click commands.

A page asks for it with the line `<!-- cli-reference -->`: each command's `--help` text, as the
installed CLI prints it when the site is built, so the reference cannot drift from the code.
"""

import re
from typing import Any

_PLACEHOLDER = "<!-- cli-reference -->"
_WIDTH = 96


def _commands() -> list[tuple[str, str]]:
    """Each command's full name and `--help` text, groups first, in the CLI's own order."""
    import click

    from unified_ai.cli import main

    out: list[tuple[str, str]] = []

    def visit(command: click.Command, name: str) -> None:
        ctx = click.Context(
            command, info_name=name, max_content_width=_WIDTH, terminal_width=_WIDTH
        )
        if isinstance(command, click.Group):
            if name == "unified-ai":
                out.append((name, command.get_help(ctx)))
            for sub_name in command.list_commands(ctx):
                sub = command.get_command(ctx, sub_name)
                if sub is not None and not sub.hidden:
                    visit(sub, f"{name} {sub_name}")
        else:
            out.append((name, command.get_help(ctx)))

    visit(main, "unified-ai")
    return out


def _anchor(name: str) -> str:
    return "cli-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _markdown() -> str:
    parts = []
    for name, text in _commands():
        parts.append(f"### `{name}` {{ #{_anchor(name)} }}\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace `<!-- cli-reference -->` by every command's `--help`."""
    if _PLACEHOLDER not in markdown:
        return markdown
    return markdown.replace(_PLACEHOLDER, _markdown())
