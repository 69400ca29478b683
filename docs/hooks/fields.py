"""MkDocs hook: the project file's field reference, rendered from the pydantic schema.

A page asks for a part of the reference with a line of its own:

    <!-- fields: policy -->     the `policy` block and everything under it
    <!-- fields: project -->    every other field of a project file

Types, defaults, bounds and descriptions come from `unified_ai.projects.schema.ProjectConfig`
(its JSON schema, as `dg check yaml` sees it, and the models' own defaults) when the site is
built, so the reference cannot drift from the code. The hook also checks every field path
written in backticks on any page (`policy.approval.mode`, `resources.serving.{requests,limits}`):
one the schema does not have is a warning, which `mkdocs build --strict` turns into a failure.
"""

import functools
import json
import logging
import re
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel

log = logging.getLogger("mkdocs.hooks.fields")

#: Which page holds which part of the reference (links between the parts point there).
PARTS = {"policy": "policy.md", "project": "project-file.md"}
_PLACEHOLDER = re.compile(r"^<!-- fields: ([a-z]+) -->$", re.MULTILINE)
#: Backticked text that looks like a field path: a top-level field name, then `.`.
_PATH_SPAN = re.compile(r"`([a-z_]+(?:\.[A-Za-z_{},\[\]*]+)+)`")
#: File names look like field paths (`evaluation.html`): spans ending so are not checked.
_FILE_SUFFIXES = (".html", ".json", ".yaml", ".yml", ".py", ".md", ".png", ".csv", ".parquet")
_MISSING = object()


@dataclass
class Section:
    """One model of the schema at one or more places in a project file."""

    paths: list[str]
    title: str
    description: str
    key: str = ""
    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        """The HTML id of the section, from its first path."""
        return _slug(self.paths[0])

    @property
    def part(self) -> str:
        """The page the section is rendered on."""
        return "policy" if self.paths[0].split(".")[0] == "policy" else "project"


def _schema() -> dict[str, Any]:
    from unified_ai.projects.schema import ProjectConfig

    return ProjectConfig.model_json_schema()


def _models() -> dict[str, type[BaseModel]]:
    """Every pydantic model reachable from `ProjectConfig`, by class name (the JSON $defs)."""
    from unified_ai.projects.schema import ProjectConfig

    found: dict[str, type[BaseModel]] = {}

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation.__name__ in found:
                return
            found[annotation.__name__] = annotation
            for info in annotation.model_fields.values():
                visit(info.annotation)
        for arg in typing.get_args(annotation):
            visit(arg)

    visit(ProjectConfig)
    return found


def _field_default(model: type[BaseModel], key: str) -> Any:
    """A field's own default (by alias or name), `_MISSING` when it is required."""
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            if info.is_required():
                return _MISSING
            value = info.get_default(call_default_factory=True)
            if isinstance(value, BaseModel):
                return value.model_dump(mode="json", by_alias=True)
            return value
    return _MISSING


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The model name a node refers to (None for a plain value) and the node it resolves to."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return name, defs[name]
    if len(node.get("allOf", [])) == 1:
        return _resolve(node["allOf"][0], defs)
    return None, node


def _without_null(node: dict[str, Any]) -> dict[str, Any]:
    options = [option for option in node.get("anyOf", []) if option.get("type") != "null"]
    return options[0] if len(options) == 1 else node


def _slug(path: str) -> str:
    return "field-" + (re.sub(r"[^a-z0-9_]+", "-", path.lower()).strip("-") or "project")


def _number(value: Any) -> str:
    big = isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) >= 10_000
    return f"{value:,}" if big else str(value)


def _bounds(node: dict[str, Any]) -> list[str]:
    low = [
        (f"{_number(node[k])} {op}")
        for k, op in (("minimum", "≤"), ("exclusiveMinimum", "<"))
        if k in node
    ]
    high = [
        (f"{op} {_number(node[k])}")
        for k, op in (("maximum", "≤"), ("exclusiveMaximum", "<"))
        if k in node
    ]
    out = []
    if low or high:
        out.append(" ".join([*low, "x", *high]))
    if "minLength" in node:
        out.append(f"at least {node['minLength']} character(s)")
    if "minItems" in node:
        out.append(f"at least {node['minItems']} item(s)")
    if "pattern" in node:
        out.append(f"matches `{node['pattern']}`")
    return out


class _Renderer:
    """Walks the JSON schema from the root and collects one `Section` per model and default."""

    def __init__(self) -> None:
        schema = _schema()
        self.defs: dict[str, Any] = schema.get("$defs", {})
        self.models = _models()
        self.sections: list[Section] = []
        self._by_key: dict[str, Section] = {}
        self._pending: list[tuple[str, str, dict[str, Any], Any]] = []
        root_name = schema.get("title", "ProjectConfig")
        self.defs.setdefault(root_name, schema)
        self._add(root_name, "", self.defs[root_name], {})

    def missing(self) -> list[str]:
        """Models and fields of the schema that no section shows (each one a build warning)."""
        shown = {section.title: {row[0] for row in section.rows} for section in self.sections}
        out = []
        for name, model in self.models.items():
            if name not in shown:
                out.append(f"model {name}")
                continue
            for field_name, info in model.model_fields.items():
                if (info.alias or field_name) not in shown[name]:
                    out.append(f"{name}.{field_name}")
        return out

    def link(self, name: str, path: str, part: str) -> str:
        """A Markdown link to the section of model `name` at `path`, from page `part`."""
        target = self._by_key.get(path)
        anchor = target.anchor if target else _slug(path)
        page = PARTS[target.part if target else "project"]
        prefix = "" if page == PARTS[part] else page
        return f"[{name}]({prefix}#{anchor})"

    def _add(self, name: str, path: str, node: dict[str, Any], default: Any) -> None:
        key = json.dumps([name, default], sort_keys=True, default=str)
        section = next((s for s in self.sections if s.key == key), None)
        if section is not None:  # the same model with the same defaults: one section
            section.paths.append(path)
        else:
            section = Section([path], name, node.get("description", ""), key)
            self.sections.append(section)
        self._by_key[path] = section
        model = self.models.get(name)
        rows = []
        for prop, sub in node.get("properties", {}).items():
            sub_path = f"{path}.{prop}" if path else prop
            if isinstance(default, dict) and prop in default:
                value = default[prop]
            elif model is not None:
                value = _field_default(model, prop)
            else:
                value = sub.get("default", _MISSING)
            rows.append(self._row(prop, sub_path, sub, value))  # also registers nested paths
        if len(section.paths) == 1:
            section.rows = rows

    def _type(self, node: dict[str, Any], path: str, default: Any) -> str:
        """The type of a node in a project file's words; nested models get their own section."""
        node = _without_null(node)
        name, target = _resolve(node, self.defs)
        if name is not None:
            sub_default = default if isinstance(default, dict) else {}
            if path not in self._by_key:
                self._add(name, path, target, sub_default)
            return f"§{name}|{path}§"
        if "anyOf" in node:
            return " or ".join(self._type(option, path, default) for option in node["anyOf"])
        if "enum" in node:
            return "one of " + ", ".join(f"`{value}`" for value in node["enum"])
        if "const" in node:
            return f"`{node['const']}`"
        kind = node.get("type")
        if kind == "array":
            item = node.get("items", {})
            return f"list of {self._type(item, path + '[]', None)}"
        if kind == "object":
            values = node.get("additionalProperties")
            if isinstance(values, dict) and values:
                return f"mapping of name to {self._type(values, path + '.*', None)}"
            return "mapping"
        return {
            "string": "text",
            "integer": "integer",
            "number": "number",
            "boolean": "true/false",
            "null": "unset",
        }.get(kind, "any")

    def _row(self, prop: str, path: str, node: dict[str, Any], value: Any) -> tuple[str, ...]:
        type_text = self._type(node, path, value)
        plain = _without_null(node)
        bounds = _bounds(plain)
        items = plain.get("items")
        if isinstance(items, dict):
            bounds += [f"each {bound}" for bound in _bounds(items)]
        description = node.get("description") or plain.get("description") or ""
        if not description and isinstance(items, dict):
            description = items.get("description", "")
        name, target = _resolve(plain, self.defs)
        if not description and name is not None:
            description = target.get("description", "").split("\n\n")[0]
        return (prop, type_text, self._default(value, name), "; ".join(bounds), description)

    @staticmethod
    def _default(value: Any, model_name: str | None) -> str:
        if value is _MISSING:
            return "**required**"
        if value is None:
            return "unset"
        if model_name is not None and isinstance(value, dict):
            return "see below" if value else "—"
        if isinstance(value, bool):
            return f"`{str(value).lower()}`"
        if value == "":
            return "empty"
        if isinstance(value, (int, float, str)):
            return f"`{_number(value)}`"
        text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
        return f"`{text}`"

    def markdown(self, part: str) -> str:
        """The reference sections of one page, as Markdown."""
        out: list[str] = []
        for section in self.sections:
            if section.part != part:
                continue
            shown = _compress(section.paths) or "a project file"
            heading = f"`{shown}`" if section.paths[0] else "A project file"
            out.append(f"### {heading} {{ #{section.anchor} }}\n")
            if section.description:
                out.append(_escape(section.description.strip()) + "\n")
            out.append("| field | type | default | bounds | description |")
            out.append("|---|---|---|---|---|")
            for prop, type_text, default, bounds, description in section.rows:
                type_text = re.sub(
                    r"§([A-Za-z]+)\|([^§]*)§",
                    lambda m: self.link(m.group(1), m.group(2), part),
                    type_text,
                )
                cells = [f"`{prop}`", type_text, default, bounds, _escape(description)]
                cells = [cell.replace("|", "\\|").replace("\n", " ") for cell in cells]
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
        return "\n".join(out)

    def known(self, path: str) -> bool:
        """Whether a dotted field path (no braces) names a field of a project file."""
        node: dict[str, Any] = self.defs[next(iter(self.models))]
        for part in path.replace("[]", "").split("."):
            node = _without_null(node)
            _, node = _resolve(node, self.defs)
            node = _without_null(node)
            if node.get("type") == "array" and isinstance(node.get("items"), dict):
                _, node = _resolve(node["items"], self.defs)
            properties = node.get("properties", {})
            if part in properties:
                node = properties[part]
            elif isinstance(node.get("additionalProperties"), dict):
                node = node["additionalProperties"]
            else:  # a free mapping (`estimator.params`) takes any name
                return node.get("additionalProperties") is True
        return True


def _escape(text: str) -> str:
    """Schema prose as Markdown text: `<project>` outside code spans is shown, not parsed."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _compress(paths: list[str]) -> str:
    """`a.x.c`, `a.y.c` → `a.{x,y}.c`: paths that differ in one place, written once."""
    if len(paths) == 1:
        return paths[0]
    split = [p.split(".") for p in paths]
    if len({len(parts) for parts in split}) == 1:
        differ = [i for i in range(len(split[0])) if len({parts[i] for parts in split}) > 1]
        if len(differ) == 1:
            i = differ[0]
            parts = list(split[0])
            parts[i] = "{" + ",".join(dict.fromkeys(p[i] for p in split)) + "}"
            return ".".join(parts)
    return ", ".join(paths)


@functools.cache
def _renderer() -> _Renderer:
    return _Renderer()


def _expand(span: str) -> list[str]:
    """`a.{b,c}.d` → [`a.b.d`, `a.c.d`]."""
    match = re.search(r"\{([^{}]*)\}", span)
    if not match:
        return [span]
    head, tail = span[: match.start()], span[match.end() :]
    return [path for option in match.group(1).split(",") for path in _expand(head + option + tail)]


def _check_paths(markdown: str, source: str) -> None:
    renderer = _renderer()
    roots = set(renderer.defs[next(iter(renderer.models))].get("properties", {}))
    for match in _PATH_SPAN.finditer(markdown):
        span = match.group(1)
        if span.split(".")[0] not in roots or span.endswith(_FILE_SUFFIXES):
            continue
        for path in _expand(span):
            if not renderer.known(path.rstrip(".*")):
                log.warning(
                    "%s: `%s` is not a field of a project file (projects/schema_*.py)", source, path
                )


def on_pre_build(config: Any) -> None:
    """Warn about any part of the schema the reference would leave out."""
    for name in _renderer().missing():
        log.warning("the field reference does not show %s (docs/hooks/fields.py)", name)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each `<!-- fields: PART -->` line by that part of the reference."""
    _check_paths(markdown, page.file.src_uri)

    def render(match: re.Match[str]) -> str:
        part = match.group(1)
        if part not in PARTS:
            log.warning("%s: unknown fields part %r", page.file.src_uri, part)
            return ""
        return _renderer().markdown(part)

    return _PLACEHOLDER.sub(render, markdown)
