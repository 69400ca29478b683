"""`unified-ai history` a page at a time: limits, order, cursors, the ledger across pages."""

import json
import os

import pytest
from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai.io.formats import serialize
from unified_ai.io.store import LineageStore

PROJECT = "mortgage_approval"
DEPLOYED = [PROJECT, "deployed_model"]
DATA = [PROJECT, "training_data"]


@pytest.fixture(autouse=True)
def no_fsync(monkeypatch):
    """Dozens of moves per test: durability is not what these tests check."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def page(*args: str) -> dict:
    result = invoke("history", PROJECT, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def move(store: LineageStore, path: list[str], n: int, action: str = "materialize") -> str:
    payload = (
        {"model_version": f"m{n}", "model_uri": "models:/m", "policy_version": "p@1"}
        if path == DEPLOYED
        else {"n": n}
    )
    version = store.write_version(path, *serialize(payload)).version
    store.set_current(path, version, action=action, actor=f"a{n}")
    return version


def all_pages(*args: str) -> list[dict]:
    pages = [page(*args)]
    while pages[-1]["next"] is not None:
        pages.append(page(*args, "--cursor", pages[-1]["next"]))
    return pages


def test_pages_newest_first_cover_every_move_once(home):
    store = LineageStore(home / "store")
    versions = [move(store, DEPLOYED, n) for n in range(11)]
    first = page("deployed_model", "--limit", "4")
    assert [m["version"] for m in first["moves"]] == versions[::-1][:4]
    assert [m["current"] for m in first["moves"]] == [True, False, False, False]
    pages = all_pages("deployed_model", "--limit", "4")
    assert [len(p["moves"]) for p in pages] == [4, 4, 3]
    assert [m["version"] for p in pages for m in p["moves"]] == versions[::-1]
    assert not any(m["current"] for p in pages[1:] for m in p["moves"])
    entries = [m["entry"] for p in pages for m in p["moves"]]
    assert entries == sorted(entries, reverse=True) and len(set(entries)) == 11


def test_the_default_page_and_limit_zero(home):
    store = LineageStore(home / "store")
    versions = [move(store, DEPLOYED, n) for n in range(23)]
    default = page("deployed_model")
    assert len(default["moves"]) == 20 and default["next"]
    everything = page("deployed_model", "--limit", "0")
    assert [m["version"] for m in everything["moves"]] == versions[::-1]
    assert everything["next"] is None
    assert len(everything["deployments"]) == 23


def test_oldest_first_pages_are_the_same_moves_in_reverse(home):
    store = LineageStore(home / "store")
    versions = [move(store, DEPLOYED, n) for n in range(7)]
    store.set_current(DEPLOYED, versions[2], action="rollback")
    pages = all_pages("deployed_model", "--limit", "3", "--oldest-first")
    assert [len(p["moves"]) for p in pages] == [3, 3, 2]
    shown = [m for p in pages for m in p["moves"]]
    assert [m["version"] for m in shown] == [*versions, versions[2]]
    assert [m["current"] for m in shown] == [False] * 7 + [True]
    newest = all_pages("deployed_model", "--limit", "3")
    assert [m["entry"] for p in newest for m in p["moves"]] == [m["entry"] for m in shown][::-1]


def test_moves_of_several_assets_page_by_time(home):
    store = LineageStore(home / "store")
    for n in range(5):
        move(store, DATA, n)
        move(store, DEPLOYED, n)
    pages = all_pages("--limit", "3")
    shown = [m for p in pages for m in p["moves"]]
    assert len(shown) == 10
    assert [m["at"] for m in shown] == sorted((m["at"] for m in shown), reverse=True)
    assert [m["asset"] for m in shown] == ["deployed_model", "training_data"] * 5
    assert [m["current"] for m in shown] == [True, True] + [False] * 8
    oldest = [m for p in all_pages("--limit", "4", "--oldest-first") for m in p["moves"]]
    assert [m["entry"] for m in oldest] == [m["entry"] for m in shown][::-1]


@pytest.mark.parametrize("order", [(), ("--oldest-first",)])
def test_the_ledger_of_a_page_ends_where_the_next_deployment_began(home, order):
    store = LineageStore(home / "store")
    for n in range(6):
        move(store, DEPLOYED, n)
    pages = all_pages("deployed_model", "--limit", "2", *order)
    rows = sorted((row for p in pages for row in p["deployments"]), key=lambda r: r["from"])
    whole = page("deployed_model", "--limit", "0")["deployments"]
    assert rows == whole
    assert [r["until"] for r in whole] == [r["from"] for r in whole[1:]] + [None]
    assert [r["model_version"] for r in whole] == [f"m{n}" for n in range(6)]


def test_a_cursor_history_did_not_print_is_refused(home):
    store = LineageStore(home / "store")
    move(store, DEPLOYED, 0)
    for cursor in ("nonsense", "training_data:00000000000000000001-deadbeef", "deployed_model:x"):
        result = invoke("history", PROJECT, "deployed_model", "--cursor", cursor)
        assert result.exit_code == 1, result.output
        [line] = result.output.strip().splitlines()
        assert "--cursor" in line and "not a cursor" in line
    # Well formed, but no such entry: a one-line store error naming it.
    gone = "deployed_model:00000000000000000001-deadbeef"
    result = invoke("history", PROJECT, "deployed_model", "--cursor", gone)
    assert result.exit_code == 1 and "00000000000000000001-deadbeef.json" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_table_says_how_to_get_the_next_page(home):
    store = LineageStore(home / "store")
    for n in range(3):
        move(store, DEPLOYED, n)
    result = invoke("history", PROJECT, "deployed_model", "--limit", "2")
    assert result.exit_code == 0, result.output
    cursor = page("deployed_model", "--limit", "2")["next"]
    assert f"more: unified-ai history {PROJECT} deployed_model --cursor {cursor}" in result.output
    last = invoke("history", PROJECT, "deployed_model", "--limit", "2", "--cursor", cursor)
    assert last.exit_code == 0 and "more:" not in last.output
    assert "a0" in last.output and "a2" not in last.output.split("what was live")[0]


def test_an_unknown_project_or_an_empty_one(home):
    result = invoke("history", "nope")
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error: unknown project 'nope' (known: ")
    empty = invoke("history", PROJECT)
    assert empty.exit_code == 0 and f"{PROJECT}: nothing materialized yet" in empty.output
    assert page()["moves"] == [] and page()["next"] is None
