"""Monthly mapping/reward review: drift, unmapped emojis, proposals, skipped rows."""

from __future__ import annotations

import hashlib

import orjson

from tracebridge.ops.monthly import monthly_review
from tracebridge.ops.monthly_page import to_markdown

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
    assert lc["skipped"] == [f"{ledger}:{len(rows) + 1}:time: missing; expected an ISO UTC time or epoch seconds/ms",
                             f"{ledger}:{len(rows) + 2}: "
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
                             "mapping": str(mapping), "mapping_sha256": hashlib.sha256(mapping.read_bytes()).hexdigest(),
                             "mapping_source": "file"}
    md = to_markdown(rep)
    assert rep["inputs"]["ledger_sha256"] in md and rep["generated_at"] in md
    # a month pair without reactions is not tested; the Markdown said "no significant drift"
    assert "not tested: too few reactions: needs 2 months" in md and "no significant drift" not in md
    # scores in words; a month without reactions has none (the page printed {'n': 0, 'mean': None, ...})
    assert "Scores under the current mapping: 3 scored, mean 1.0, 3 positive, 0 negative (previous: no scored " \
        "reaction)." in md and "None" not in md


def test_a_host_without_a_mapping_file_is_reviewed_under_the_default_mapping(tmp_path):
    # the daily audit and the export join read a missing mapping as the built-in defaults; the monthly
    # review refused it (exit 2 on the 1st of every month) on a host that never edited the mapping
    ledger, _ = _write(tmp_path, _rows("2026-02", {"👍": 3, "🔥": 6}))
    rep = monthly_review(ledger, tmp_path / "none.json", "2026-02")
    assert rep["mapping_version"] == 1 and rep["inputs"]["mapping_sha256"] is None
    assert rep["unmapped"] == {"🔥": 6} and "👍" not in rep["unmapped"]
    # said, not silent: the report and its page name the defaults (the page said "sha256 None")
    assert rep["inputs"]["mapping_source"] == "built-in defaults (no mapping file there)"
    md = to_markdown(rep)
    assert f"the built-in default mapping: no mapping file at {tmp_path / 'none.json'}." in md
    assert "sha256 None" not in md and "total variation None" not in md


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
                                     f"(first: {ledger}:1:time: missing; expected an ISO UTC time or epoch seconds/ms)")
    # each skipped line names the value that was wrong (before: "missing or invalid", nothing to fix it by)
    assert rep["ledger_counts"]["skipped"][1] == f"{ledger}:2:change: got 'liked'; expected added or removed"
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


def _cli_review(tmp_path, ledger, mapping, month, *extra):
    from tests.ops.test_cli import run

    return run("ops", "monthly-review", f"monthly.ledger={ledger}", f"monthly.mapping={mapping}", "agree_with=[]",
               "--month", month, "--out", tmp_path / "out", *extra)


def test_a_rule_that_needs_two_months_is_not_evaluated_on_one(tmp_path):
    """A ledger holding only rows of the review month proposed "mapped but unused for two months" for every
    mapped emoji not used that month: one month of evidence claimed as two. Now each rule states the months it
    needs; one without ledger rows in each of them is not evaluated, and the report (JSON and Markdown) says
    which rule and why; the exit code stays 0 (the review ran on what there is)."""
    import json

    ledger, mapping = _write(tmp_path, _rows("2026-11", {"👍": 9, "🔥": 6}))
    r = _cli_review(tmp_path, ledger, mapping, "2026-11", "--json")
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["ok"] is True
    why = "needs 2 months of at least 5 ledger rows, has 1: 2026-11 (none dated 2026-10)"
    assert doc["rules"]["review_unused"] == {"months": ["2026-10", "2026-11"], "rows": {"2026-10": 0, "2026-11": 15},
                                             "evaluated": False, "why_not": why}
    assert doc["rules"]["drift"]["evaluated"] is False and doc["rules"]["drift"]["why_not"] == why
    assert doc["drift"]["tvd"] is None and why in doc["drift"]["note"]
    assert doc["rules"]["add_unmapped"] == {"months": ["2026-11"], "rows": {"2026-11": 15}, "evaluated": True,
                                            "why_not": None}
    assert [(p["change"], p["emoji"], p["rule"], p["evidence"]) for p in doc["proposals"]] == \
        [("add", "🔥", "add_unmapped", ["2026-11"])]
    r = _cli_review(tmp_path, ledger, mapping, "2026-11")
    assert r.exit_code == 0
    assert f"- review_unused (2026-10, 2026-11): **not evaluated**: {why}" in r.stdout
    assert "unused for two months" not in r.stdout and "review 🙈" not in r.stdout
    # rows of the month before only: the month's own rules have nothing to read
    ledger, mapping = _write(tmp_path, _rows("2026-10", {"👍": 3}))
    rep = monthly_review(ledger, mapping, "2026-11")
    assert rep["ok"] and rep["proposals"] == []
    assert rep["rules"]["add_unmapped"]["why_not"] == "needs 1 month of at least 5 ledger rows, has 0 (none dated 2026-11)"
    assert rep["rules"]["review_unused"]["why_not"] == "needs 2 months of at least 5 ledger rows, has 0 (2026-10 has 3 rows; none dated 2026-11)"


def test_two_months_of_rows_evaluate_every_rule_and_proposals_name_their_months(tmp_path):
    """With rows in both months every rule runs; a review proposal names the months it rests on. An emoji
    added and then withdrawn was used: it is not "unused" (the rule read net counts, which are 0 for it)."""
    rows = _rows("2026-10", {"👍": 4, "👎": 2}, removed=["👎", "👎"]) + _rows("2026-11", {"👍": 5})
    ledger, mapping = _write(tmp_path, rows)
    rep = monthly_review(ledger, mapping, "2026-11")
    assert all(r["evaluated"] for r in rep["rules"].values()), rep["rules"]
    props = {p["emoji"]: p for p in rep["proposals"]}
    assert sorted(props) == ["❤", "🙈"]  # 👎 was added in 2026-10: used, even if withdrawn
    assert props["🙈"]["rule"] == "review_unused" and props["🙈"]["evidence"] == ["2026-10", "2026-11"]
    assert props["🙈"]["why"] == "mapped but no reaction added in 2026-10 or 2026-11 (ledger rows: 8 and 5)"
    assert "- review_unused (2026-10, 2026-11): evaluated" in to_markdown(rep)


def test_rows_after_the_review_month_are_ignored_and_named(tmp_path):
    """Rows dated after the review's month (a review of October run in December) were counted among "other
    months" without a word; now they are ignored and named (month, rows, first and last file:line). A time with
    an offset belongs to its UTC month: 2026-12-01T00:30+01:00 is 2026-11-30 23:30 UTC (it was read as
    2026-12 and dropped) and 2026-11-01T00:30+02:00 is 2026-10 (it was counted in November)."""
    rows = _rows("2026-10", {"👍": 2}) + _rows("2026-11", {"👍": 3})
    rows += [{"time": "2026-12-01T00:30:00+01:00", "emoji": "👎", "change": "added"},
             {"time": "2026-11-01T00:30:00+02:00", "emoji": "❤", "change": "added"},
             {"time": "2026-12-01T00:00:00Z", "emoji": "🔥", "change": "added"},
             {"time": "2027-01-05T10:00:00Z", "emoji": "🔥", "change": "added"},
             {"time": "2026-12-20T10:00:00Z", "emoji": "🔥", "change": "added"}]
    ledger, mapping = _write(tmp_path, rows)
    rep = monthly_review(ledger, mapping, "2026-11")
    assert rep["emojis"]["2026-11"]["added"] == {"👍": 3, "👎": 1}
    assert rep["emojis"]["2026-10"]["added"] == {"👍": 2, "❤": 1}
    lc = rep["ledger_counts"]
    assert lc["after_month"] == {"2026-12": {"rows": 2, "first": f"{ledger}:8", "last": f"{ledger}:10"},
                                 "2027-01": {"rows": 1, "first": f"{ledger}:9", "last": f"{ledger}:9"}}
    assert lc["read"] == lc["used"] + len(lc["skipped"]) + lc["other_months"] and lc["other_months"] == 3
    md = to_markdown(rep)
    assert "## Rows dated after 2026-11 (ignored)" in md and f"- 2027-01: 1 row, {ledger}:9" in md
    assert f"- 2026-12: 2 rows, {ledger}:8 … {ledger}:10" in md


def test_a_torn_last_line_is_named_and_the_rest_used(tmp_path):
    """A ledger whose last line was cut short (the webhook writer mid-append, or a crash) is named as torn with
    file:line; every whole row before it is used and the command exits 0."""
    rows = _rows("2026-10", {"👍": 2}) + _rows("2026-11", {"👍": 3})
    ledger, mapping = _write(tmp_path, rows, b'{"time": "2026-11-20T1')
    rep = monthly_review(ledger, mapping, "2026-11")
    lc = rep["ledger_counts"]
    assert lc["used"] == 5 and lc["read"] == 6 and lc["torn"] == f"{ledger}:6"
    torn = f"{ledger}:6: torn last line (no line end: a write cut short or still going); the rows before it are used"
    assert lc["skipped"] == [torn]
    r = _cli_review(tmp_path, ledger, mapping, "2026-11")
    assert r.exit_code == 0 and f"{ledger}:6: torn last line" in r.stdout


def test_a_month_still_going_is_said_to_be_partial(tmp_path):
    """A review of a month not yet over (``--month`` of this month) read its rows as a whole month without a
    word; now ``month_over`` is False and the Markdown says its counts are partial. A past month is over."""
    ledger, mapping = _write(tmp_path, _rows("2999-01", {"👍": 3}) + _rows("2026-02", {"👍": 3}))
    rep = monthly_review(ledger, mapping, "2999-01")
    assert rep["month_over"] is False and rep["ok"]
    assert f"**2999-01 is not over at {rep['generated_at']}: its counts and rules read part of the month.**" \
        in to_markdown(rep)
    rep = monthly_review(ledger, mapping, "2026-02")
    assert rep["month_over"] is True and "is not over" not in to_markdown(rep)


def test_the_inputs_sha256_is_of_the_bytes_evaluated_not_of_what_the_files_hold_later(tmp_path, monkeypatch):
    """The ledger and the mapping were hashed after they were read: a reaction the webhook appended (or a
    ``mapping set``) between the read and the hash gave a sha256 of other bytes than were evaluated. Now each
    file is read once and its hash is of those bytes. The writes land while the review runs (after both
    reads, before the report is put together)."""
    from tracebridge.ops import monthly

    ledger, mapping = _write(tmp_path, _rows("2026-01", {"👍": 6}) + _rows("2026-02", {"👍": 6}))
    read = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (ledger, mapping)}
    real = monthly.check_evidence

    def writes_meanwhile(*args, **kwargs):
        with open(ledger, "ab") as fh:
            fh.write(orjson.dumps({"time": "2026-02-20T10:00:00Z", "emoji": "🔥", "change": "added"}) + b"\n")
        mapping.write_bytes(orjson.dumps({"version": 4, "mapping": {"👍": 1}}))
        return real(*args, **kwargs)

    monkeypatch.setattr(monthly, "check_evidence", writes_meanwhile)
    rep = monthly_review(ledger, mapping, "2026-02")
    assert rep["ledger_counts"]["read"] == 12 and rep["mapping_version"] == 3
    assert rep["inputs"]["ledger_sha256"] == read[ledger] != hashlib.sha256(ledger.read_bytes()).hexdigest()
    assert rep["inputs"]["mapping_sha256"] == read[mapping] != hashlib.sha256(mapping.read_bytes()).hexdigest()


def test_a_month_of_one_ledger_row_does_not_rest_a_rule(tmp_path):
    """A month with a single ledger row counted as a month of evidence: one reaction in October let
    ``review_unused`` propose reviewing every mapped emoji as "unused in 2026-10 or 2026-11" and ran the drift
    test on one row. Now a month needs ``monthly.min_rows`` rows (default 5) before a rule rests on it; one
    short says so in ``why_not`` and proposes nothing. ``monthly.min_rows=1`` (a config key) evaluates it."""
    ledger, mapping = _write(tmp_path, _rows("2026-10", {"👍": 1}) + _rows("2026-11", {"👍": 9, "🔥": 6}))
    r = _cli_review(tmp_path, ledger, mapping, "2026-11", "--json")
    doc = orjson.loads(r.stdout)
    why = "needs 2 months of at least 5 ledger rows, has 1: 2026-11 (2026-10 has 1 row)"
    assert r.exit_code == 0 and doc["rules"]["review_unused"]["why_not"] == why
    assert doc["rules"]["review_unused"]["evaluated"] is False and doc["rules"]["drift"]["why_not"] == why
    assert doc["drift"]["chi2_p"] is None and doc["rules"]["add_unmapped"]["evaluated"] is True
    assert [p["rule"] for p in doc["proposals"]] == ["add_unmapped"]
    rep = monthly_review(ledger, mapping, "2026-11", min_rows=1)
    assert all(r["evaluated"] for r in rep["rules"].values()) and "review_unused" in {p["rule"] for p in rep["proposals"]}
    r = _cli_review(tmp_path, ledger, mapping, "2026-11", "monthly.min_rows=0")
    assert r.exit_code == 2 and "monthly.min_rows=0: must be >= 1" in r.output


def test_times_no_calendar_holds_are_skipped_and_early_years_are_not_after_the_month(tmp_path):
    """An epoch past year 9999 (and NaN) stopped the review with a traceback; a row dated year 5 was keyed
    "5-01", which sorts after "2026-02", and was counted as after the reviewed month."""
    rows = [*_rows("2026-02", {"👍": 3}), {"time": 10**17, "emoji": "👍", "change": "added"},
            {"time": float("nan"), "emoji": "👍", "change": "added"},
            {"time": "0005-01-01T00:00:00Z", "emoji": "👍", "change": "added"}]
    ledger, mapping = _write(tmp_path, rows)
    rep = monthly_review(ledger, mapping, "2026-02")
    lc = rep["ledger_counts"]
    assert lc["used"] == 3 and lc["other_months"] == 1 and lc["after_month"] == {}
    assert [x.split(":", 2)[2] for x in lc["skipped"]] == [
        "time: got 100000000000000000; expected an ISO UTC time or epoch seconds/ms",
        "time: got None; expected an ISO UTC time or epoch seconds/ms"]  # NaN: JSON writes null
