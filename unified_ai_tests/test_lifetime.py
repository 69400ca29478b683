"""Objects a process keeps until it exits are built out of the collector's view, once."""

from unified_ai_tests.test_import_hygiene import probe

TABLES_PROBE = """
import gc, json, sys
from unified_ai.ml.csv_reader import read_csv_checked
assert "pandas" not in sys.modules
collections = []
gc.callbacks.append(lambda phase, info: collections.append(1) if phase == "start" else None)
frame = read_csv_checked(b"a,b\\n1,x\\n2,y\\n")
first = {"frozen": gc.get_freeze_count(), "collections": len(collections), "on": gc.isenabled(),
         "rows": len(frame)}
from unified_ai.io.formats import serialize
serialize(frame)
second = {"frozen": gc.get_freeze_count()}
print(json.dumps({"first": first, "second": second}))
"""


def test_the_table_libraries_a_step_imports_are_frozen_out_of_the_collectors_view(tmp_path):
    result = probe(tmp_path, TABLES_PROBE)
    first, second = result["first"], result["second"]
    # numpy, pandas and pyarrow are imported by the first read, with the collector paused
    # (imported with it on: dozens of collections), then frozen; the collector is on again.
    assert first["rows"] == 2
    assert first["frozen"] > 50_000 and first["on"] is True
    assert first["collections"] <= 2, first
    # Storing the frame (pyarrow's Parquet writer) freezes nothing more.
    assert second["frozen"] < first["frozen"] + 1_000


FAILED_PROBE = """
import gc, json, sys
import unified_ai.lifetime as lifetime
sys.modules["pandas"] = None  # makes `import pandas` fail
try:
    lifetime.import_table_libraries()
except ImportError:
    pass
print(json.dumps({"frozen": gc.get_freeze_count(), "on": gc.isenabled()}))
"""


def test_a_failed_import_freezes_nothing_and_leaves_the_collector_on(tmp_path):
    assert probe(tmp_path, FAILED_PROBE) == {"frozen": 0, "on": True}


KINDS_PROBE = """
import gc, json, sys
from unified_ai.lifetime import import_kept
assert "xml.dom.minidom" not in sys.modules and "email.parser" not in sys.modules
import_kept("xml", "xml.dom.minidom")
first = gc.get_freeze_count()
import_kept("xml", "xml.dom.minidom")
again = gc.get_freeze_count()
kept = [[] for _ in range(2_000)]  # lists: objects the collector tracks
import_kept("email", "email.parser")
other = gc.get_freeze_count()
print(json.dumps({"first": first, "again": again, "other": other,
                  "imported": "email.parser" in sys.modules}))
"""


def test_each_kind_is_imported_and_frozen_once_per_process(tmp_path):
    result = probe(tmp_path, KINDS_PROBE)
    # The first import of a kind freezes what exists; the same call again does nothing.
    assert result["first"] > 1_000 and result["again"] == result["first"]
    # Another kind freezes once more, taking in what was built since.
    assert result["other"] >= result["first"] + 2_000 and result["imported"] is True
