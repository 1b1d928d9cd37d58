"""Ledgers and promotion records under concurrent writers and crashes: real OS processes append
while some are SIGKILLed (by the parent, or at a chosen crash point); afterwards every
acknowledged write is there, nothing is duplicated, the history is one valid chain and the
active pointer matches it. ``scripts/chaos_ledger.py`` runs the same at scale."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from pathlib import Path

import orjson
import pytest

from tracebridge.feedback.ledger import append_locked, read_ledger
from tracebridge.ops.promotion import (
    HISTORY,
    PolicyState,
    active_record,
    promote,
    read_history,
    rollback,
    verify_history,
)
from tracebridge.testing.ledger_chaos import (
    chain_problems,
    ledger_chaos,
    promotion_chaos,
    write_reports,
)


def test_feedback_ledger_under_concurrent_writers_kills_and_torn_rows(tmp_path: Path) -> None:
    fig = ledger_chaos(tmp_path, writers=4, writes=40, kills=8, tear_p=0.03, seed=1)
    assert fig["killed"] >= 1
    assert fig["lost"] == 0 and fig["duplicated"] == 0 and fig["expected_keys_missing"] == 0, fig
    assert fig["found"] == fig["acknowledged"] == 160
    assert fig["bad_quarantine"] == 0  # only torn fragments are quarantined, each on its own line


def test_a_torn_ledger_tail_does_not_swallow_the_next_row(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    row = {"time": "2026-03-01T10:00:00Z", "chat": 1, "message_id": 1, "emoji": "👍", "change": "added"}
    append_locked(path, [{**row, "key": "a"}])
    with open(path, "ab") as fh:
        fh.write(b'{"time": "2026-03-01T10:00:0')  # a writer killed mid-row
    assert append_locked(path, [{**row, "key": "b"}]) == (1, 0)
    scan = read_ledger(path)
    assert [r.key for r in scan.rows] == ["a", "b"] and scan.read == 3
    assert len(scan.skipped) == 1 and scan.skipped[0].startswith(f"{path}:2:")


def test_promotion_history_under_concurrent_changes_and_kills(tmp_path: Path) -> None:
    fig = promotion_chaos(tmp_path, writers=3, writes=15, kills=5, tear_p=0.1, seed=2)
    assert fig["killed"] >= 1
    assert fig["lost"] == 0 and fig["duplicated"] == 0 and fig["history_problems"] == 0, fig
    assert fig["pointer_matches_history"] == 1
    assert fig["records"] >= fig["acknowledged"] + 1  # + the repairing promote


def _crash_at(state_dir: Path, report: Path, point: str) -> None:
    """A promote that dies (SIGKILL) at ``point``."""
    from tracebridge.capture import writer
    from tracebridge.ops import promotion

    def die(*_a: object, **_k: object) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "before_history":
        promotion.canonical_json = die  # type: ignore[assignment]
    elif point == "mid_history":
        real = os.write

        def half(fd: int, data: bytes) -> int:
            real(fd, data[: len(data) // 2])
            die()
            return 0

        promotion.os.write = half  # type: ignore[assignment]
    elif point == "after_history":
        promotion.write_atomic = die  # type: ignore[assignment]
    elif point == "before_pointer_rename":
        writer.os.replace = die  # type: ignore[assignment]
    elif point == "before_pointer_dir_fsync":
        real_open = os.open
        writer.os.open = lambda p, flags, *a: die() if flags == os.O_RDONLY else real_open(p, flags, *a)  # type: ignore
    promote(PolicyState(state_dir), report, require_baseline_match=False)


@pytest.mark.parametrize("point", ["before_history", "mid_history", "after_history", "before_pointer_rename",
                                   "before_pointer_dir_fsync"])
def test_promotion_killed_at_each_step_is_repaired_by_the_next_command(tmp_path: Path, point: str) -> None:
    st = PolicyState(tmp_path / "state")
    g = write_reports(tmp_path / "reports", 3)
    promote(st, g[0], require_baseline_match=False)
    before = read_history(st)
    p = mp.get_context("fork").Process(target=_crash_at, args=(st.root, g[1], point))
    p.start()
    p.join(60)
    assert p.exitcode == -signal.SIGKILL
    hist = read_history(st)  # what `ops policy` reads: never fails on a crash
    assert hist[: len(before)] == before and verify_history(hist) == []
    landed = len(hist) == len(before) + 1
    assert landed == (point in ("after_history", "before_pointer_rename", "before_pointer_dir_fsync"))
    if point in ("after_history", "before_pointer_rename"):
        assert active_record(st) == before[-1]  # the pointer lags: reported by `ops policy`, repaired next
    rec = rollback(st)  # the next command
    hist = read_history(st)
    assert verify_history(hist) == [] and chain_problems(hist) == [] and active_record(st) == hist[-1] == rec
    assert rec["active_policy"] == ("cand-0" if landed else "base")
    torn = st.root / (HISTORY + ".torn")
    assert torn.is_file() == (point == "mid_history")
    if point == "mid_history":
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(torn.read_bytes())  # the fragment is kept for audit, out of the history
