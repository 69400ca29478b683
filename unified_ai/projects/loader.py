"""Finding and validating model project files.

A project is either a `unified_ai.ModelProject` component in Dagster's defs folder
(`unified_ai/defs/<name>/defs.yaml`, its fields under `attributes:`) or a plain project file in
the directory named by `UNIFIED_AI_PROJECTS`. Both are validated by the same schema, here, with
relative paths resolved against the file's folder. Every error names the file, the field and the
reason on one line.
"""

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from unified_ai.ml.data import resolve_source
from unified_ai.names import MODEL_PROJECT_TYPE
from unified_ai.projects.schema import ProjectConfig, leaves_folder

#: Dagster's defs folder of this package (`[tool.dg.project] root_module` + `.defs`).
DEFS_DIR = Path(__file__).resolve().parent.parent / "defs"
#: The file a component folder of the defs folder declares its component in.
DEFS_FILE = "defs.yaml"
#: Keys of a `defs.yaml` document besides `type` and `attributes` (Dagster's own).
_COMPONENT_KEYS = {"type", "attributes", "template_vars_module", "requirements", "post_processing"}


class ProjectConfigError(ValueError):
    """A project file is unreadable or invalid."""


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: object, line: int) -> None:
        super().__init__(f"line {line}: duplicate key {key!r}")
        self.key = key
        self.line = line


class _StrictLoader(yaml.SafeLoader):
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
    documents = read_yaml_documents(path)
    if len(documents) > 1:
        raise ProjectConfigError(f"{path}: holds {len(documents)} YAML documents; expected one")
    return documents[0] if documents else None


def read_yaml_documents(path: Path) -> list[object]:
    """Every document of a YAML file (a `defs.yaml` may hold several), parsed strictly."""
    try:
        # _StrictLoader is a SafeLoader.
        return list(yaml.load_all(path.read_text(), Loader=_StrictLoader))
    except OSError as exc:
        raise ProjectConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    except _DuplicateKey as exc:
        raise ProjectConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ProjectConfigError(f"{path}: is not valid YAML{line}") from None


def _printable(text: str) -> str:
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
    return _printable(f"{path}: " + "; ".join(parts))


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
                    _printable(
                        f"{where or folder}: {name}: {value!r} leads outside the project's "
                        f"folder (to {outside}); use a path inside it or a remote URL, or set "
                        "data.allow_outside_paths: true"
                    )
                )
    source = resolve_source(project.data.source, base)
    update = {"data": project.data.model_copy(update={"source": source})}
    if project.training.script:
        script = resolve_source(project.training.script, base)
        update["training"] = project.training.model_copy(update={"script": script})
    if project.monitoring.inbox:
        inbox = resolve_source(project.monitoring.inbox, base)
        update["monitoring"] = project.monitoring.model_copy(update={"inbox": inbox})
    return project.model_copy(update=update)


def _project_fields(path: Path) -> object:
    """The project fields in `path`: the whole file, or a `ModelProject` component's attributes."""
    documents = read_yaml_documents(path)
    components = [d for d in documents if isinstance(d, dict) and "type" in d]
    if not components:
        if len(documents) > 1:
            raise ProjectConfigError(f"{path}: holds {len(documents)} YAML documents; expected one")
        return documents[0] if documents else None
    projects = [d for d in components if d["type"] == MODEL_PROJECT_TYPE]
    if not projects:
        raise ProjectConfigError(f"{path}: type: declares no {MODEL_PROJECT_TYPE} component")
    if len(projects) > 1:
        raise ProjectConfigError(
            f"{path}: declares {len(projects)} {MODEL_PROJECT_TYPE} components; a folder holds "
            "one project"
        )
    [component] = projects
    unknown = sorted(set(component) - _COMPONENT_KEYS)
    if unknown:
        raise ProjectConfigError(f"{path}: {unknown[0]}: unknown field")
    if not isinstance(component.get("attributes"), dict):
        raise ProjectConfigError(f"{path}: attributes: expected a mapping of project fields")
    return component["attributes"]


def load_project_file(path: Path | str) -> ProjectConfig:
    """Parse and validate one project file (plain, or a `ModelProject` component's `defs.yaml`)."""
    path = Path(path)
    raw = _project_fields(path)
    if not isinstance(raw, dict):
        raise ProjectConfigError(f"{path}: (top level): expected a mapping of project fields")
    try:
        project = ProjectConfig.model_validate(raw)
    except ValidationError as exc:
        raise ProjectConfigError(format_validation_error(path, exc)) from None
    return with_paths_resolved(project, path.parent, path)


def declares_project(path: Path) -> bool:
    """Whether a `defs.yaml` declares a `ModelProject` component (without validating it)."""
    try:
        documents = read_yaml_documents(path)
    except ProjectConfigError:
        return True  # unreadable: loading it reports why
    return any(isinstance(d, dict) and d.get("type") == MODEL_PROJECT_TYPE for d in documents)


def component_files(defs_dir: Path = DEFS_DIR) -> list[Path]:
    """The `defs.yaml` files of the defs folder that declare a project, sorted by path."""
    return [path for path in sorted(defs_dir.rglob(DEFS_FILE)) if declares_project(path)]


def _extra_files(extra_dir: str | None) -> list[Path]:
    if not extra_dir:
        return []
    folder = Path(extra_dir).expanduser()
    if not folder.is_dir():
        raise ProjectConfigError(f"UNIFIED_AI_PROJECTS={extra_dir}: is not a directory")
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def project_files(extra_dir: str | None) -> list[Path]:
    """Project components of the defs folder, then the files in `extra_dir` sorted by name."""
    return [*component_files(), *_extra_files(extra_dir)]


@dataclass(frozen=True)
class ProjectSource:
    """A validated project and the file that declares it.

    Attributes:
        project: The project.
        path: Its file.
        component: Whether it is a `ModelProject` component of the defs folder (Dagster builds
            those itself when it loads the defs folder).
    """

    project: ProjectConfig
    path: Path
    component: bool


def discover_projects(extra_dir: str | None = None) -> list[ProjectSource]:
    """Every project, validated; a project name used twice is an error naming both files."""
    components = component_files()
    found: dict[str, ProjectSource] = {}
    for path in [*components, *_extra_files(extra_dir)]:
        project = load_project_file(path)
        if project.name in found:
            other = found[project.name].path
            raise ProjectConfigError(f"{path}: name: project {project.name!r} is also in {other}")
        found[project.name] = ProjectSource(project, path, component=path in components)
    return list(found.values())


def load_projects(extra_dir: str | None = None) -> list[ProjectConfig]:
    """Every project (the defs folder's, then `extra_dir`'s); a duplicated name is an error."""
    return [source.project for source in discover_projects(extra_dir)]
