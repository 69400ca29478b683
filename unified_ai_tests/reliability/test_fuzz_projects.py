"""Fuzzing project files: every generated file is accepted or refused with one line.

Each example starts from a valid project and mutates it the ways people and tools break YAML:
a field set to a value of another type, a non-finite or huge number, odd unicode, a missing or
unknown field, duplicated keys, or plain garbage text. Loading must either give a project or
raise `ProjectConfigError` whose message is one line naming the file; an accepted project must
build its Dagster definitions.
"""

import copy
import math
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unified_ai.definitions import build_definitions
from unified_ai.projects.loader import ProjectConfigError, load_project_file
from unified_ai.runtime import load_settings
from unified_ai_tests.conftest import make_frame, write_project

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 0, -1, 10**6]),
    st.text(max_size=12),
    st.sampled_from(
        [
            "alice\n",
            "\uff41\uff4c\uff49\uff43\uff45",
            "ali\u200bce",
            "22:00",
            "24:99",
            "group:x",
            ".nan",
        ]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def base_project(folder: Path) -> dict:
    return yaml.safe_load(write_project(folder).read_text())


def paths_of(node, prefix=()):
    """Every (path) to a mapping entry or list item inside `node`."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            found += paths_of(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += paths_of(v, (*prefix, i))
    return found


def set_path(doc, path, value):
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def delete_path(doc, path):
    node = doc
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]


@st.composite
def mutated_documents(draw, base: dict) -> str:
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        paths = paths_of(doc)
        action = draw(st.sampled_from(["set", "set", "set", "delete", "add"]))
        if action == "add" or not paths:
            target = doc
            parents = [p for p in paths if isinstance(_get(doc, p), dict)]
            if parents and draw(st.booleans()):
                target = _get(doc, draw(st.sampled_from(parents)))
            target[draw(st.text(min_size=1, max_size=8))] = draw(VALUES)
            continue
        path = draw(st.sampled_from(paths))
        if action == "delete":
            delete_path(doc, path)
        else:
            set_path(doc, path, draw(VALUES))
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        # Duplicate a top-level line (a duplicated key), or cut the file short.
        lines = text.splitlines()
        index = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        lines = [*lines, lines[index]] if draw(st.booleans()) else lines[: index + 1]
        text = "\n".join(lines) + "\n"
    return text


def _get(doc, path):
    node = doc
    for part in path:
        node = node[part]
    return node


def numbers_in(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from numbers_in(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from numbers_in(value)
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield node


def load_or_refuse(path: Path):
    """The project, or None after checking the refusal is one line naming the file."""
    try:
        project = load_project_file(path)
    except ProjectConfigError as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert message.startswith(str(path)), message
        return None
    # An accepted project holds only finite numbers: NaN makes every gate comparison false.
    assert all(math.isfinite(n) for n in numbers_in(project.model_dump())), project
    return project


def test_generated_project_files_are_accepted_or_refused_in_one_line(tmp_path):
    folder = tmp_path / "projects"
    base = base_project(folder)
    target = folder / "fuzzed.yaml"
    outcomes = {"accepted": 0, "refused": 0}

    @settings(
        max_examples=300,
        deadline=None,
        derandomize=True,  # CI reruns the same examples: a failure is reproducible
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(text=mutated_documents(base))
    def check(text):
        target.write_text(text)
        outcomes["accepted" if load_or_refuse(target) is not None else "refused"] += 1

    check()
    assert outcomes["refused"] > 50 and outcomes["accepted"] > 10, outcomes


@given(text=st.text(max_size=200))
@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
def test_arbitrary_text_is_refused_in_one_line(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("garbage") / "garbage.yaml"
    path.write_text(text)
    assert load_or_refuse(path) is None


def test_accepted_fuzzed_projects_build_their_definitions(tmp_path, home):
    """A project that loads must also load as a code location (its graph builds)."""
    folder = tmp_path / "projects"
    base = base_project(folder)
    make_frame().to_csv(folder / "small.csv", index=False)
    runtime = load_settings()
    built = []

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,  # CI reruns the same examples: a failure is reproducible
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(text=mutated_documents(base))
    def check(text):
        path = folder / "fuzzed.yaml"
        path.write_text(text)
        project = load_or_refuse(path)
        if project is not None:
            defs = build_definitions(runtime, [project])
            assert defs.resolve_job_def(f"{project.name}__training_loop") is not None
            built.append(project.name)

    check()
    assert built, "no generated project was valid: the generator is too aggressive"
