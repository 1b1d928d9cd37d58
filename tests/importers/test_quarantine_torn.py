"""A quarantine file whose last row is torn (an import stopped mid-write: killed while the parallel import
copied its workers' rows in, a power loss) is cut before the next import appends, which names it; the rows
then equal an uninterrupted import's. Before, the next row was glued onto the fragment: neither parsed, and
that quarantined line's bytes were lost for good (its transcript's lines counted as imported)."""

from __future__ import annotations

import json

import pytest

from tests.importers.conftest import HOME
from tracebridge.importers.openclaw import import_openclaw


@pytest.mark.parametrize("workers", [1, 2])
def test_a_torn_quarantine_row_is_cut_and_written_again_whole(tmp_path, workers):
    ref = import_openclaw([HOME], tmp_path / "ref", workers=workers)
    whole = (tmp_path / "ref/.import/openclaw-quarantine.jsonl").read_bytes()
    assert ref.lines_quarantined >= 2
    q = tmp_path / "t/.import/openclaw-quarantine.jsonl"
    q.parent.mkdir(parents=True)
    q.write_bytes(
        whole[: len(whole.splitlines()[0]) // 2]
    )  # the first row, torn; no state saved after it
    rep = import_openclaw([HOME], tmp_path / "t", workers=workers)
    assert q.read_bytes() == whole and all(json.loads(line) for line in whole.splitlines())
    assert any(str(q) in p and "torn last row" in p for p in rep.problems), rep.problems
    again = import_openclaw([HOME], tmp_path / "t", workers=workers)
    assert q.read_bytes() == whole and not any("torn" in p for p in again.problems)
