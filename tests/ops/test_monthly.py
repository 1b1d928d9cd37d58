"""Monthly mapping/reward review: drift, unmapped emojis, proposals, skipped rows."""

from __future__ import annotations

import hashlib

import orjson

from tracebridge.ops.monthly import monthly_review, to_markdown

MAPPING = {"version": 3, "mapping": {"❤️": 2, "❤": 2, "👍": 1, "👎": -1, "🙈": -2}}


def _rows(month, counts, removed=()):
    out, i = [], 0
    for emoji, n in counts.items():
        for _ in range(n):
            i += 1
            out.append({"time": f"{month}-{1 + i % 27:02d}T10:00:00Z", "chat": 1, "message_id": i,
                        "user": "h", "emoji": emoji, "change": "added", "score": None, "update_id": i})
    for emoji in removed:
        out.append({"time": f"{month}-28T10:00:00Z", "emoji": emoji, "change": "removed"})
    return out


def _write(tmp_path, rows, extra=b""):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows) + extra)
    mapping = tmp_path / "mapping.json"
    mapping.write_bytes(orjson.dumps(MAPPING))
    return ledger, mapping


def test_drift_unmapped_and_proposals(tmp_path):
    rows = _rows("2026-01", {"👍": 40, "❤": 20, "👎": 5}) + \
        _rows("2026-02", {"👍": 10, "❤️": 10, "👎": 25, "🔥": 12, "🦄": 6, "🫠": 1}, removed=["👍", "👍"])
    ledger, mapping = _write(tmp_path, rows, b'{"emoji": "x"}\nnot json\n')
    rep = monthly_review(ledger, mapping, "2026-02", min_count=5)
    assert rep["previous_month"] == "2026-01" and rep["mapping_version"] == 3
    assert rep["emojis"]["2026-02"]["net"]["👍"] == 8 and rep["emojis"]["2026-02"]["net"]["❤"] == 10
    assert rep["drift"]["drifted"] and rep["drift"]["chi2_p"] < 0.05
    assert rep["unmapped"] == {"🔥": 12, "🦄": 6, "🫠": 1}
    props = {p["emoji"]: p for p in rep["proposals"]}
    assert props["🔥"]["proposed_score"] == 1 and props["🦄"]["proposed_score"] is None
    assert "🫠" not in props  # below min_count
    assert props["🙈"]["change"] == "review"  # mapped, unused for two months
    lc = rep["ledger_counts"]
    assert lc["read"] == lc["used"] + len(lc["skipped"]) + lc["other_months"]
    assert lc["skipped"] == [f"{ledger}:{len(rows) + 1}:time: missing or invalid", f"{ledger}:{len(rows) + 2}: "
                             + lc["skipped"][1].split(": ", 1)[1]]
    md = to_markdown(rep)
    assert "**drifted**" in md and "add 🔥 → 1" in md


def test_same_distribution_does_not_drift(tmp_path):
    rows = _rows("2026-01", {"👍": 30, "❤": 20}) + _rows("2026-02", {"👍": 31, "❤": 19})
    ledger, mapping = _write(tmp_path, rows)
    rep = monthly_review(ledger, mapping, "2026-02")
    assert not rep["drift"]["drifted"] and rep["unmapped"] == {}
    assert rep["scores"]["2026-02"]["mean"] > 1


def test_anonymous_channel_counts_weigh_their_size(tmp_path):
    """A channel's anonymous 👎 count going from 0 to 40 is one ledger row with ``count: 40``; the
    review counted it as one 👎, so 3 users' 👍 outweighed 40 anonymous 👎 in the distribution."""
    rows = _rows("2026-02", {"👍": 3})
    rows.append({"time": "2026-02-10T10:00:00Z", "chat": -100, "message_id": 9, "user": "anonymous", "emoji": "👎",
                 "change": "added", "count": 40, "update_id": 50})
    rows.append({"time": "2026-02-11T10:00:00Z", "chat": -100, "message_id": 9, "user": "anonymous", "emoji": "👎",
                 "change": "removed", "count": 10, "update_id": 51})
    rows.append({"time": "2026-02-12T10:00:00Z", "emoji": "👍", "change": "added", "count": 0})
    ledger, mapping = _write(tmp_path, rows)
    rep = monthly_review(ledger, mapping, "2026-02")
    assert rep["emojis"]["2026-02"]["net"] == {"👍": 3, "👎": 30}
    assert rep["scores"]["2026-02"]["negative"] == 30
    assert rep["ledger_counts"]["skipped"][0].endswith(":count: must be a positive integer, got 0")


def test_report_is_timestamped_and_names_the_bytes_it_read(tmp_path):
    ledger, mapping = _write(tmp_path, _rows("2026-02", {"👍": 3}))
    rep = monthly_review(ledger, mapping, "2026-02")
    assert rep["generated_at"].endswith("Z")
    assert rep["inputs"] == {"ledger": str(ledger), "ledger_sha256": hashlib.sha256(ledger.read_bytes()).hexdigest(),
                             "mapping": str(mapping), "mapping_sha256": hashlib.sha256(mapping.read_bytes()).hexdigest()}
    md = to_markdown(rep)
    assert rep["inputs"]["ledger_sha256"] in md and rep["generated_at"] in md
    # a month pair without reactions is not tested; the Markdown said "no significant drift"
    assert "not tested: a month without reactions" in md and "no significant drift" not in md


def test_a_host_without_a_mapping_file_is_reviewed_under_the_default_mapping(tmp_path):
    # the daily audit and the export join read a missing mapping as the built-in defaults; the monthly
    # review refused it (exit 2 on the 1st of every month) on a host that never edited the mapping
    ledger, _ = _write(tmp_path, _rows("2026-02", {"👍": 3, "🔥": 6}))
    rep = monthly_review(ledger, tmp_path / "none.json", "2026-02")
    assert rep["mapping_version"] == 1 and rep["inputs"]["mapping_sha256"] is None
    assert rep["unmapped"] == {"🔥": 6} and "👍" not in rep["unmapped"]


def test_a_review_with_no_usable_ledger_row_fails_and_says_why(tmp_path):
    """Every ledger row skipped (each named with file:line) still exited 0, with every mapped emoji proposed
    for review as "unused for two months": proposals based on nothing. Now the report says why it failed
    (``ok`` false, ``problem``), proposes nothing, and the command exits 1 with the report written."""
    import json

    from tests.ops.test_cli import run

    rows = [{"emoji": "👍", "change": "added"}, {"time": "2026-02-03T10:00:00Z", "emoji": "👍", "change": "liked"}]
    ledger, mapping = _write(tmp_path, rows)
    rep = monthly_review(ledger, mapping, "2026-02")
    assert not rep["ok"] and rep["proposals"] == []
    assert rep["problem"].startswith(f"no usable reaction row: all 2 ledger rows that could be read were skipped "
                                     f"(first: {ledger}:1:time: missing or invalid)")
    assert "**Review failed: no usable reaction row" in to_markdown(rep)
    args = ["ops", "monthly-review", f"monthly.ledger={ledger}", f"monthly.mapping={mapping}", "agree_with=[]",
            "--month", "2026-02", "--out", tmp_path / "out", "--json"]
    r = run(*args)
    doc = json.loads(r.stdout)
    assert r.exit_code == 1 and doc["ok"] is False and doc["problem"] == rep["problem"] and doc["proposals"] == []
    assert json.loads((tmp_path / "out" / "monthly-2026-02.json").read_bytes())["ok"] is False
    # rows only of other months: nothing to review either, said so
    ledger, mapping = _write(tmp_path, _rows("2025-06", {"👍": 3}))
    rep = monthly_review(ledger, mapping, "2026-02")
    assert not rep["ok"] and "no ledger row is dated 2026-02 or 2026-01 (3 read, 3 of other months" in rep["problem"]
    assert run(*args[:-1]).exit_code == 1
    # one usable row is enough
    ledger, mapping = _write(tmp_path, _rows("2026-01", {"👍": 1}))
    assert monthly_review(ledger, mapping, "2026-02")["ok"] and run(*args).exit_code == 0
