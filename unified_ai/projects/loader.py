"""Finding and validating model project files.

Packaged projects live beside this module; more come from the directory named by
`UNIFIED_AI_PROJECTS`. Every error names the file, the field and the reason on one line.
"""

from pathlib import Path

import yaml
from pydantic import ValidationError

from unified_ai.ml.data import resolve_source
from unified_ai.projects.schema import ProjectConfig

PACKAGED_DIR = Path(__file__).parent


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
    try:
        return yaml.load(path.read_text(), Loader=_StrictLoader)  # _StrictLoader is a SafeLoader
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


def load_project_file(path: Path | str) -> ProjectConfig:
    """Parse and validate one project YAML file."""
    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ProjectConfigError(f"{path}: (top level): expected a mapping of project fields")
    try:
        project = ProjectConfig.model_validate(raw)
    except ValidationError as exc:
        raise ProjectConfigError(format_validation_error(path, exc)) from None
    base = str(path.parent.resolve())
    source = resolve_source(project.data.source, base)
    update = {"data": project.data.model_copy(update={"source": source})}
    if project.training.script:
        script = resolve_source(project.training.script, base)
        update["training"] = project.training.model_copy(update={"script": script})
    return project.model_copy(update=update)


def project_files(extra_dir: str | None) -> list[Path]:
    """Packaged project files, then those in `extra_dir`, each sorted by name."""
    files = sorted(PACKAGED_DIR.glob("*.yaml"))
    if extra_dir:
        folder = Path(extra_dir).expanduser()
        if not folder.is_dir():
            raise ProjectConfigError(f"UNIFIED_AI_PROJECTS={extra_dir}: is not a directory")
        files += sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    return files


def load_projects(extra_dir: str | None = None) -> list[ProjectConfig]:
    """Load every project; a duplicated project name is an error."""
    projects: dict[str, tuple[ProjectConfig, Path]] = {}
    for path in project_files(extra_dir):
        project = load_project_file(path)
        if project.name in projects:
            other = projects[project.name][1]
            raise ProjectConfigError(f"{path}: name: project {project.name!r} is also in {other}")
        projects[project.name] = (project, path)
    return [project for project, _ in projects.values()]
