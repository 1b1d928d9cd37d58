"""A half-written last line makes the rollouts of its file wait: written without it, their runs would
never get its span (an imported run is never rewritten). Once whole, the import is byte-identical to one
of the complete file."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.importers.conftest import lazy_importorskip, tree_bytes
from tracebridge.importers.agentlightning.config import SpanImportConfig
from tracebridge.importers.agentlightning.importer import import_agentlightning

lazy_importorskip("agentlightning")
SPANS = Path(__file__).resolve().parents[1] / "data" / "agentlightning" / "agentops_openai_spans.jsonl"


def test_a_rollout_waits_for_its_half_written_span(tmp_path):
    full = SPANS.read_bytes()
    src = tmp_path / "spans.jsonl"
    src.write_bytes(full[:-40])  # the last span still being written
    d = import_agentlightning([src], tmp_path / "t").to_dict()
    assert (d["lines_pending"], d["rollouts_pending"], d["runs_written"]) == (1, 1, 0) and d["reconciles"]
    assert not d["imported_nothing"]
    src.write_bytes(full)
    d = import_agentlightning([src], tmp_path / "t").to_dict()
    assert (d["read"], d["runs_written"], d["rollouts_pending"]) == (1, 1, 0)
    import_agentlightning([SPANS], tmp_path / "clean")
    assert tree_bytes(tmp_path / "t") == tree_bytes(tmp_path / "clean")


def test_every_rollout_of_the_file_waits_and_other_files_do_not(tmp_path):
    """The pending line's rollout is unknown until it parses, so each rollout with a record in that file
    waits; a rollout whose records are all in another file is imported."""
    lines = SPANS.read_bytes().splitlines(keepends=True)
    other = [orjson.dumps({**orjson.loads(x), "rollout_id": "ro-other"}) + b"\n" for x in lines]
    (tmp_path / "a.jsonl").write_bytes(b"".join(other))
    live = tmp_path / "b.jsonl"
    live.write_bytes(b"".join(lines[:-1]) + b"".join(other[:2]) + lines[-1][:-40])
    d = import_agentlightning([tmp_path], tmp_path / "t").to_dict()
    assert (d["rollouts_seen"], d["rollouts_imported"], d["rollouts_pending"]) == (2, 0, 2)  # ro-other: in b too
    live.write_bytes(b"".join(lines[:-1]) + lines[-1][:-40])
    d = import_agentlightning([tmp_path / "a.jsonl", live], tmp_path / "t2").to_dict()
    assert (d["rollouts_imported"], d["rollouts_pending"]) == (1, 1)  # ro-other is all in a.jsonl
    assert (tmp_path / "t2" / "al-ro-other").is_dir()
    # finished files: nothing waits, the torn line is quarantined
    d = import_agentlightning([live], tmp_path / "t3", SpanImportConfig(final=True)).to_dict()
    assert (d["rollouts_imported"], d["rollouts_pending"], d["quarantined"]) == (1, 0, 1)
