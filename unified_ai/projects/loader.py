"""Reading and validating plain project files.

A plain project file holds a project's fields at its top level (`<UNIFIED_AI_PROJECTS>/*.yaml`,
or any file given to `unified-ai policy check`). A `unified_ai.ModelProject` component's
`defs.yaml` is not read here: Dagster's component tree reads those (`unified_ai.project_tree`).
Both are validated by the same schema, with relative paths resolved against the file's folder.
Every error names the file, the field and the reason on one line.
"""

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from unified_ai.names import MODEL_PROJECT_TYPE
from unified_ai.projects.errors import ProjectConfigError as ProjectConfigError
from unified_ai.projects.schema import ProjectConfig, leaves_folder


def resolve_source(source: str, base_dir: str | None) -> str:
    """Return `source` with a relative local path made absolute against `base_dir`."""
    if source.startswith("bundled:") or "://" in source or base_dir is None:
        return source
    path = Path(source).expanduser()
    return str(path if path.is_absolute() else Path(base_dir) / path)


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: object, line: int) -> None:
        super().__init__(f"line {line}: duplicate key {key!r}")
        self.key = key
        self.line = line


#: libyaml's parser when PyYAML was built with it (its wheels are): several times faster than the
#: pure-Python one on the commented project files the code location reads at every load.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeLoader):
    """SafeLoader that refuses a key repeated in one mapping.

    Plain YAML keeps the last value silently, so `min_improvement: 0.05` further down could undo
    a reviewed setting without anyone noticing. Keys brought in by a `<<` merge may still be
    overridden, as YAML intends.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
            except TypeError:
                continue  # unhashable key: the base class reports it
            if repeated:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> object:
    """Parse one YAML file strictly (no duplicate keys); errors name the file and the line."""
    try:
        # _StrictLoader is a SafeLoader.
        documents = list(yaml.load_all(path.read_text(), Loader=_StrictLoader))
    except OSError as exc:
        raise ProjectConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    except _DuplicateKey as exc:
        raise ProjectConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ProjectConfigError(f"{path}: is not valid YAML{line}") from None
    if len(documents) > 1:
        raise ProjectConfigError(f"{path}: holds {len(documents)} YAML documents; expected one")
    return documents[0] if documents else None


def refuse_repeated_keys(path: Path) -> None:
    """Refuse a key repeated in one mapping of any YAML file, e.g. a component's `defs.yaml`.

    Dagster's YAML reading keeps the last value silently; this only checks, it reads no field.
    Unreadable or invalid YAML is left to the reader to report.
    """
    try:
        for _ in yaml.load_all(path.read_text(), Loader=_StrictLoader):
            pass
    except _DuplicateKey as exc:
        raise ProjectConfigError(f"{path}: {exc}") from None
    except (OSError, yaml.YAMLError):
        return


def printable(text: str) -> str:
    """Escape line breaks and other invisible characters, so an error stays one readable line."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


def _field(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def format_validation_error(path: Path | str, error: ValidationError) -> str:
    """One line: `file: field: reason[; field: reason ...]`."""
    parts = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "missing":
            message = "required field is missing"
        parts.append(f"{_field(item['loc'])}: {message}")
    return printable(f"{path}: " + "; ".join(parts))


def with_paths_resolved(
    project: ProjectConfig, folder: Path | str, where: Path | str | None = None
) -> ProjectConfig:
    """`project` with its relative data source, inbox and training script made absolute.

    Relative paths in a project are relative to the folder of the file that declares it, and
    stay inside it: a local path that leads outside (`../../etc/passwd.csv`, `/data/x.csv`,
    `file:///x.csv`) is refused, naming `where` (the file), unless the project sets
    `data.allow_outside_paths: true`. Remote URLs (s3://, gs://, https://...) are not paths.
    """
    base = str(Path(folder).resolve())
    paths = {
        "data.source": project.data.source,
        "monitoring.inbox": project.monitoring.inbox,
        "training.script": project.training.script,
    }
    if not project.data.allow_outside_paths:
        for name, value in paths.items():
            outside = leaves_folder(value, base) if value else None
            if outside:
                raise ProjectConfigError(
                    printable(
                        f"{where or folder}: {name}: {value!r} leads outside the project's "
                        f"folder (to {outside}); use a path inside it or a remote URL, or set "
                        "data.allow_outside_paths: true"
                    )
                )
    source = resolve_source(project.data.source, base)
    update: dict[str, Any] = {"data": project.data.model_copy(update={"source": source})}
    if project.training.script:
        script = resolve_source(project.training.script, base)
        update["training"] = project.training.model_copy(update={"script": script})
    if project.monitoring.inbox:
        inbox = resolve_source(project.monitoring.inbox, base)
        update["monitoring"] = project.monitoring.model_copy(update={"inbox": inbox})
    return project.model_copy(update=update)


def load_project_file(path: Path | str) -> ProjectConfig:
    """Parse and validate one plain project file.

    A file that declares a `ModelProject` component (`type:` and `attributes:`) is refused with
    where it goes now: Dagster loads components from a folder's `defs.yaml`.
    """
    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ProjectConfigError(f"{path}: (top level): expected a mapping of project fields")
    if "type" in raw and "attributes" in raw:
        raise ProjectConfigError(
            f"{path}: type: a {MODEL_PROJECT_TYPE} component file is loaded by Dagster from a "
            f"folder: move it to {path.parent / path.stem / 'defs.yaml'}, or keep only its "
            "attributes (unindented) in a plain project file"
        )
    try:
        project = ProjectConfig.model_validate(raw)
    except ValidationError as exc:
        raise ProjectConfigError(format_validation_error(path, exc)) from None
    return with_paths_resolved(project, path.parent, path)


def projects_folder(extra_dir: str | None) -> Path | None:
    """The folder `UNIFIED_AI_PROJECTS` names (None when unset); not a folder is an error."""
    if not extra_dir:
        return None
    folder = Path(extra_dir).expanduser()
    if not folder.is_dir():
        raise ProjectConfigError(f"UNIFIED_AI_PROJECTS={extra_dir}: is not a directory")
    return folder


def plain_project_files(extra_dir: str | None) -> list[Path]:
    """The plain project files at the top of `extra_dir` (`*.yaml`, `*.yml`), sorted by name."""
    folder = projects_folder(extra_dir)
    if folder is None:
        return []
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
