"""MkDocs hook: pages whose text lives at the repository root, so it is written once.

- A page that holds `<!-- include-readme -->` (the home page) becomes README.md, whose links
  are written for a reader of the repository (`docs/loop.md`, `docs/screenshots/x.png`,
  `BENCHMARKS.md`) and are rewritten here to the site's own pages.
- `<!-- include-benchmarks -->` is replaced by BENCHMARKS.md (the last full run of
  `python -m benchmarks`), its headings moved one level down.
"""

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.repo_pages")

_README = "<!-- include-readme -->"
_BENCHMARKS = "<!-- include-benchmarks -->"
#: A Markdown link or image target: `](target)`.
_TARGET = re.compile(r"\]\(([^)\s]+)\)")


def _root(config: Any) -> Path:
    return Path(config.config_file_path).resolve().parent


def _site_link(target: str) -> str:
    """A README link as the site's home page needs it."""
    if target.startswith(("http://", "https://", "#", "mailto:")):
        return target
    if target.startswith("docs/"):
        return target.removeprefix("docs/")
    if target == "BENCHMARKS.md" or target.startswith("BENCHMARKS.md#"):
        return "benchmarks.md" + target.removeprefix("BENCHMARKS.md")
    return target  # anything else is reported by mkdocs' own link validation


def _readme(root: Path) -> str:
    text = (root / "README.md").read_text(encoding="utf-8")
    return _TARGET.sub(lambda m: f"]({_site_link(m.group(1))})", text)


def _benchmarks(root: Path) -> str:
    text = (root / "BENCHMARKS.md").read_text(encoding="utf-8")
    lines = []
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        lines.append("#" + line if line.startswith("#") and not in_code else line)
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Insert README.md and BENCHMARKS.md where a page asks for them."""
    root = _root(config)
    if _README in markdown:
        markdown = _readme(root)  # the whole page: its own text is for readers of docs/
    if _BENCHMARKS in markdown:
        markdown = markdown.replace(_BENCHMARKS, _benchmarks(root))
    return markdown


def on_serve(server: Any, config: Any, builder: Any) -> Any:
    """`mkdocs serve` rebuilds when README.md or BENCHMARKS.md changes."""
    root = _root(config)
    for name in ("README.md", "BENCHMARKS.md"):
        server.watch(str(root / name))
    return server
