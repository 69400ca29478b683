"""Every model project of the code location, as Dagster's component tree loads it.

Dagster's component tree is the only reader of `defs.yaml` files. It loads two defs folders the
same way:

- the package's own (`unified_ai/defs/`, `[tool.dg.project]`'s defs module), which `dg list
  defs`, `dg check defs` and `dg scaffold defs` see;
- `UNIFIED_AI_PROJECTS`: each folder in it that holds a `defs.yaml` (`<dir>/<name>/defs.yaml`)
  is loaded as a component folder of its own. Only those folders are loaded, so a Python file
  beside a project (a training script) is never imported as a definitions module.

Plain project files at the top of `UNIFIED_AI_PROJECTS` (`<dir>/*.yaml`: the project's fields,
no `type:`) keep working; `unified_ai.projects.loader` reads them. Both kinds are validated by
the same schema (`ProjectConfig`), the `ModelProject` components when Dagster loads them. Loading
validates and builds nothing: `ComponentTree.build_defs` builds a tree's assets later, from the
components already loaded. Every error is one line naming the file, the field and the reason.
"""

import re
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import yaml
from pydantic import ValidationError

from unified_ai.components import DEFS_FILE, ModelProject
from unified_ai.names import MODEL_PROJECT_TYPE
from unified_ai.projects.loader import (
    ProjectConfigError,
    format_validation_error,
    load_project_file,
    plain_project_files,
    printable,
    projects_folder,
)
from unified_ai.projects.schema import ProjectConfig

#: Dagster's defs folder of this package (`[tool.dg.project] root_module` + `.defs`).
DEFS_DIR = Path(__file__).resolve().parent / "defs"
#: Where Dagster names the YAML file of a failing field: "`estimator.class at /x/defs.yaml:32`".
_FILE_IN_MESSAGE = re.compile(r" at (.+?\.ya?ml):\d+`")


@dataclass(frozen=True)
class ProjectSource:
    """A validated project and the file that declares it.

    Attributes:
        project: The project.
        path: Its file (a component folder's `defs.yaml`, or a plain project file).
        tree: The component tree that loaded it; None for a plain project file (the code
            location builds those itself).
    """

    project: ProjectConfig
    path: Path
    tree: dg.ComponentTree | None


@contextmanager
def _quiet() -> Iterator[None]:
    # Loading components uses Dagster APIs it marks beta/preview itself; one warning per
    # component would reach every CLI command and log line.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        yield


def packaged_tree() -> dg.ComponentTree:
    """The package's defs folder, as `dg list defs` and `dg check defs` load it."""
    import unified_ai
    import unified_ai.defs

    # From the module, not from the nearest pyproject.toml: an installed package (the image)
    # has none above it.
    return dg.ComponentTree.from_module(
        defs_module=unified_ai.defs, project_root=Path(unified_ai.__file__).parent.parent
    )


def folder_tree(folder: Path) -> dg.ComponentTree:
    """A component folder outside the package (`<UNIFIED_AI_PROJECTS>/<name>/`), as a defs folder.

    It is no Python package, so its module is made here: a package whose only path is the folder.
    """
    folder = folder.resolve()
    module = types.ModuleType(f"unified_ai_projects.{folder.name}")
    module.__file__ = None
    module.__path__ = [str(folder)]
    return dg.ComponentTree.from_module(defs_module=module, project_root=folder.parent)


def component_folders(projects_dir: str | None) -> list[Path]:
    """The folders of `projects_dir` that hold a `defs.yaml`, sorted by name."""
    folder = projects_folder(projects_dir)
    if folder is None:
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and (p / DEFS_FILE).is_file())


def component_trees(projects_dir: str | None) -> list[dg.ComponentTree]:
    """The package's defs folder, then each component folder of `projects_dir`."""
    return [packaged_tree(), *(folder_tree(f) for f in component_folders(projects_dir))]


def build_trees(trees: list[dg.ComponentTree]) -> list[dg.Definitions]:
    """Everything `trees` declare (as `component_trees` returns them), built once each.

    Each tree is built at its defs folder. The first (the package's) is also attached to the
    definitions, so they carry its tree for `dg`, as Definitions hold one tree. Building a tree
    at its root would also snapshot every component type installed in the environment into the
    definitions' metadata (about 0.2 s, a quarter of the code location's load), which neither
    the UI nor the CLI reads.
    """
    with _quiet():
        built = [tree.build_defs(tree.defs_module_path) for tree in trees]
    if trees:
        built.append(dg.Definitions(component_tree=trees[0]))
    return built


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in found:
        found.append(link)
        link = link.__cause__ or link.__context__
    return found


def _one_line(exc: Exception, where: Path) -> ProjectConfigError | None:
    """Dagster's (multi-line) loading error as one line naming the file, field and reason.

    None when it is no project or YAML error (e.g. a Python module of the defs folder fails):
    that error is Dagster's to report.
    """
    chain = _chain(exc)
    for cause in chain:
        if isinstance(cause, ProjectConfigError):
            return cause
    named = (_FILE_IN_MESSAGE.search(str(cause)) for cause in chain)
    path = next((match.group(1) for match in named if match), None) or str(where)
    for cause in chain:
        if isinstance(cause, yaml.MarkedYAMLError) and cause.problem_mark is not None:
            mark = cause.problem_mark
            return ProjectConfigError(f"{mark.name}: is not valid YAML at line {mark.line + 1}")
    validation = [cause for cause in chain if isinstance(cause, ValidationError)]
    if validation:
        # The innermost error: its locations are the fields of the file (or of `attributes:`).
        return ProjectConfigError(format_validation_error(path, validation[-1]))
    if any(isinstance(cause, yaml.YAMLError) for cause in chain):
        return ProjectConfigError(printable(f"{path}: is not valid YAML"))
    return None


def tree_projects(tree: dg.ComponentTree) -> list[ProjectSource]:
    """The `ModelProject` components `tree` loads, validated (nothing is built)."""
    where = tree.defs_module_path
    try:
        with _quiet():
            components = tree.get_all_components(of_type=ModelProject)
    except Exception as exc:
        refused = _one_line(exc, where / DEFS_FILE if (where / DEFS_FILE).is_file() else where)
        if refused is None:
            raise
        raise refused from None
    return [ProjectSource(c.project, c.path or where / DEFS_FILE, tree) for c in components]


def file_projects(path: Path | str) -> list[ProjectSource]:
    """The projects one file declares: a `defs.yaml` (through Dagster's tree) or a plain file."""
    path = Path(path)
    if path.name != DEFS_FILE:
        return [ProjectSource(load_project_file(path), path, None)]
    if not path.is_file():
        raise ProjectConfigError(f"{path}: cannot be read: No such file")
    sources = tree_projects(folder_tree(path.parent))
    if not sources:
        raise ProjectConfigError(f"{path}: type: declares no {MODEL_PROJECT_TYPE} component")
    return sources


def each_source(
    projects_dir: str | None, trees: list[dg.ComponentTree] | None = None
) -> Iterator[tuple[Path, list[ProjectSource] | ProjectConfigError]]:
    """Each file or folder of projects with what it declares, or why it is invalid.

    The package's defs folder and each component folder of `projects_dir` (or `trees`, as
    `component_trees` returns them), then the plain project files of `projects_dir`.
    """
    for tree in component_trees(projects_dir) if trees is None else trees:
        try:
            yield tree.defs_module_path, tree_projects(tree)
        except ProjectConfigError as exc:
            yield tree.defs_module_path, exc
    for path in plain_project_files(projects_dir):
        try:
            yield path, [ProjectSource(load_project_file(path), path, None)]
        except ProjectConfigError as exc:
            yield path, exc


def discover_projects(
    projects_dir: str | None = None, trees: list[dg.ComponentTree] | None = None
) -> list[ProjectSource]:
    """Every project, validated; the first invalid file, or a name used twice, is an error."""
    found: dict[str, ProjectSource] = {}
    for _, sources in each_source(projects_dir, trees):
        if isinstance(sources, ProjectConfigError):
            raise sources
        for source in sources:
            name = source.project.name
            if name in found:
                raise ProjectConfigError(
                    f"{source.path}: name: project {name!r} is also in {found[name].path}"
                )
            found[name] = source
    return list(found.values())


def load_projects(projects_dir: str | None = None) -> list[ProjectConfig]:
    """Every project: the defs folders' components, then `projects_dir`'s plain files."""
    return [source.project for source in discover_projects(projects_dir)]
