"""Bot API updates → ledger rows; getUpdates dumps; the OpenClaw system-event harvest."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from tests.feedback.conftest import DATE, emoji, reaction
from tracebridge.feedback.harvest import harvest_dumps
from tracebridge.feedback.harvest_openclaw import event_time, harvest_openclaw
from tracebridge.feedback.ledger import hash_user, read_ledger
from tracebridge.feedback.mapping import load_mapping
from tracebridge.feedback.telegram import UpdateError, read_updates, rows_from_update

M = load_mapping("/nonexistent/defaults")


def test_old_and_new_reactions_become_added_and_removed_rows():
    rows = rows_from_update(reaction(5, 10, ["👍", "❤"], ["❤️", "🔥"]), M, source="getUpdates", harvested_at="h")
    assert [(r["change"], r["emoji"], r["score"]) for r in rows] == [("added", "🔥", None), ("removed", "👍", 1.0)]
    assert rows[0]["user"].startswith("u:") and rows[0]["time"] == "2026-02-25T06:13:20.000Z"
    assert rows[0]["key"] == "tg:5:added:🔥" and rows[0]["mapping_version"] == 1
    custom = {"update_id": 6, "message_reaction": {"chat": {"id": 1}, "message_id": 2, "date": DATE, "user": {"id": 1},
                                                   "old_reaction": [],
                                                   "new_reaction": [{"type": "custom_emoji", "custom_emoji_id": "99"},
                                                                    {"type": "paid"}]}}
    assert [r["emoji"] for r in rows_from_update(custom, M, source="s", harvested_at="h")] == ["custom:99", "paid"]
    assert rows_from_update({"update_id": 7, "message": {"text": "hi"}}, M, source="s", harvested_at="h") == []


def test_anonymous_counts_become_changes():
    state: dict = {}
    upd = lambda uid, n: {"update_id": uid, "message_reaction_count": {
        "chat": {"id": -100}, "message_id": 3, "date": DATE, "reactions": [{"type": emoji("👍"), "total_count": n}]}}
    first = rows_from_update(upd(1, 3), M, source="s", harvested_at="h", anonymous=state)
    second = rows_from_update(upd(2, 1), M, source="s", harvested_at="h", anonymous=state)
    assert [(r["change"], r["count"], r["user"]) for r in first + second] == [("added", 3, "anonymous"),
                                                                               ("removed", 2, "anonymous")]


def test_bad_updates_raise_with_the_field():
    with pytest.raises(UpdateError, match="chat.id"):
        rows_from_update({"update_id": 1, "message_reaction": {"message_id": 1, "date": 1}}, M, source="s",
                         harvested_at="h")
    with pytest.raises(UpdateError, match="date"):
        rows_from_update({"update_id": 1, "message_reaction": {"chat": {"id": 1}, "message_id": 1}}, M, source="s",
                         harvested_at="h")


def test_dump_formats():
    one = reaction(1, 1, [], ["👍"])
    assert len(read_updates(orjson.dumps({"ok": True, "result": [one, one]}), "f")) == 2
    assert read_updates(orjson.dumps([one]), "f")[0][0] == "f:result[0]"
    jsonl = orjson.dumps(one) + b"\nnot json\n" + orjson.dumps({"ok": True, "result": [one]})
    got = read_updates(jsonl, "f")
    assert [w for w, _ in got] == ["f:1", "f:2:<line>", "f:3:result[0]"] and isinstance(got[1][1], str)


def test_harvest_is_idempotent_and_quarantines(cfg, tmp_path):
    dump = tmp_path / "updates.json"
    dump.write_bytes(orjson.dumps({"ok": True, "result": [reaction(1, 10, [], ["👍"]), {"update_id": 2,
                                   "message_reaction": {"chat": {}, "message_id": 1, "date": 1}}]}))
    r1, r2 = harvest_dumps(cfg, [dump]), harvest_dumps(cfg, [dump])
    assert (r1.read, r1.added, r1.quarantined) == (2, 1, 1) and (r2.added, r2.duplicates) == (0, 1)
    assert r1.quarantine_samples == [f"{dump}:result[1]:chat.id: missing"]
    assert len(read_ledger(cfg.ledger).rows) == 1
    q = [orjson.loads(x) for x in Path(cfg.quarantine).read_bytes().splitlines()]
    assert len(q) == 1 and q[0]["reason"] == "missing"  # the same bad update is quarantined once
    assert len(Path(cfg.harvest_log).read_text().splitlines()) == 2


def test_malformed_reaction_fields_raise_with_the_field():
    """Found by scripts/chaos_fuzz.py --kinds telegram: these escaped as TypeError/OverflowError."""
    body = reaction(1, 1, [], ["👍"])["message_reaction"]
    for field, value in (("new_reaction", 12345), ("old_reaction", True), ("date", 2**40), ("date", 1e300),
                         ("chat", {"id": [1, 2]})):
        with pytest.raises(UpdateError, match=field.split(".")[0]):
            rows_from_update({"update_id": 1, "message_reaction": {**body, field: value}}, M, source="s",
                             harvested_at="h")
    for uid in (None, "7", [[1]], True):  # the update id makes the dedupe keys (and a deep one the ledger row)
        with pytest.raises(UpdateError, match="update_id"):
            rows_from_update({"update_id": uid, "message_reaction": body}, M, source="s", harvested_at="h")
    with pytest.raises(UpdateError, match="reactions"):
        rows_from_update({"update_id": 2, "message_reaction_count": {"chat": {"id": 1}, "message_id": 1, "date": DATE,
                                                                     "reactions": 7}}, M, source="s", harvested_at="h")


def test_harvest_survives_bom_scalars_and_deep_nesting(cfg, tmp_path):
    """A BOM in front of the dump is not a bad line; a JSON scalar is an update error, not a read
    error; an update nested deeper than orjson writes is quarantined, not a crash."""
    deep = b'{"update_id": 3, "message_reaction": ' + b"[" * 300 + b"1" + b"]" * 300 + b"}"
    dump = tmp_path / "updates.jsonl"
    dump.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(reaction(1, 10, [], ["👍"])) + b'\n"str"\n' + deep + b"\n")
    rep = harvest_dumps(cfg, [dump])
    assert (rep.read, rep.accepted, rep.quarantined, rep.added) == (3, 1, 2, 1)
    assert rep.quarantine_samples == [f"{dump}:2:<update>: not a JSON object", f"{dump}:3:message_reaction: not an object"]
    dump.write_bytes(b'{"update_id": 4, "message_reaction": {\n')
    rep = harvest_dumps(cfg, [dump])
    q = [orjson.loads(x) for x in Path(cfg.quarantine).read_bytes().splitlines()]
    assert rep.quarantine_samples[0].startswith(f"{dump}:1:<line>: invalid JSON")
    assert q[-1]["raw"] == '{"update_id": 4, "message_reaction": {'  # the bad line is kept


def _counts(uid: int, totals: dict[str, int]) -> dict:
    return {"update_id": uid, "message_reaction_count": {"chat": {"id": -1}, "message_id": 5, "date": DATE + uid,
                                                         "reactions": [{"type": emoji(e), "total_count": n}
                                                                       for e, n in totals.items()]}}


def test_counts_survive_a_second_harvest_and_stale_updates(cfg, tmp_path):
    """Harvesting the same dump again moved the counts back (the first update was re-applied
    against the final totals: ❤ 1 -> 0); an older or re-delivered count update is now stale, and
    one that reuses an update id with other totals is a conflict (quarantined)."""
    dump = tmp_path / "counts.jsonl"
    dump.write_bytes(b"\n".join(orjson.dumps(u) for u in (
        _counts(1, {"👍": 2}), _counts(2, {"👍": 2, "❤": 1}), _counts(1, {"👍": 9}), _counts(2, {"🔥": 4}),
        _counts(0, {"👍": 5}))))

    def net() -> dict[str, int]:
        out: dict[str, int] = {}
        for r in read_ledger(cfg.ledger).rows:
            out[r.emoji] = out.get(r.emoji, 0) + (r.count if r.change == "added" else -r.count)
        return {e: n for e, n in out.items() if n}

    first = harvest_dumps(cfg, [dump])
    assert net() == {"👍": 2, "❤": 1} and (first.read, first.accepted, first.quarantined) == (5, 3, 2)
    harvest_dumps(cfg, [dump])
    assert net() == {"👍": 2, "❤": 1}
    dump.write_bytes(orjson.dumps(_counts(3, {"❤": 3})))
    harvest_dumps(cfg, [dump])
    assert net() == {"❤": 3}


def test_counts_after_a_week_without_updates_apply_though_their_ids_start_lower(cfg, tmp_path):
    """After a week with no update Telegram numbers a bot's updates anew from a random id: a channel post's new
    count with an id below the last one applied was taken as stale and ignored, its reactions lost."""
    week = 8 * 86400
    before = {"update_id": 900_000, "message_reaction_count": {"chat": {"id": -1}, "message_id": 5, "date": DATE - week,
                                                              "reactions": [{"type": emoji("👍"), "total_count": 2}]}}
    after = {"update_id": 12, "message_reaction_count": {"chat": {"id": -1}, "message_id": 5, "date": DATE,
                                                         "reactions": [{"type": emoji("👍"), "total_count": 5}]}}
    for i, upd in enumerate((before, after)):
        dump = tmp_path / f"u{i}.json"
        dump.write_bytes(orjson.dumps([upd]))
        rep = harvest_dumps(cfg, [dump])
        assert (rep.applied, rep.ignored) == (1, {}), rep.ignored
    assert sum(r.count if r.change == "added" else -r.count for r in read_ledger(cfg.ledger).rows) == 5
    dump.write_bytes(orjson.dumps([before]))  # the old count delivered again later is stale: the counts stay
    assert harvest_dumps(cfg, [dump]).applied == 0
    assert sum(r.count if r.change == "added" else -r.count for r in read_ledger(cfg.ledger).rows) == 5


def test_harvest_from_openclaw_system_events(cfg):
    from tests.importers.conftest import HOME

    rep = harvest_openclaw(cfg, [HOME])
    again = harvest_openclaw(cfg, [HOME])
    assert (rep.added, again.added, again.duplicates) == (1, 0, 1)
    (row,) = read_ledger(cfg.ledger).rows
    assert (row.chat, row.message_id, row.emoji, row.change, row.source) == (hash_user(4242), 901, "👍", "added", "openclaw")
    assert row.time.isoformat() == "2026-03-01T10:00:24+00:00"  # 18:00:24 GMT+8
    assert event_time("2026-03-22 04:55:25 UTC", None) == "2026-03-22T04:55:25.000Z"
    assert event_time("2026-03-22 04:55:25 GMT-05:30", None) == "2026-03-22T10:25:25.000Z"


def _transcript(path: Path, *contents) -> Path:
    """A transcript whose user messages have these contents (each row also says ``Telegram reaction``
    outside its content, so a content without one is still a line the harvest reads)."""
    rows = [{"type": "session", "version": 3, "id": path.stem, "timestamp": "2026-01-01T00:00:00.000Z"}]
    rows += [{"type": "message", "id": f"m{i}", "timestamp": "2026-01-01T00:00:01.000Z", "note": "Telegram reaction",
              "message": {"role": "user", "content": c}} for i, c in enumerate(contents)]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_openclaw_harvest_quarantines_bad_lines_and_keeps_the_rest(cfg, tmp_path):
    """A system-event time such as month 13 or GMT+99 aborted the whole harvest with an unlocated
    ``month must be in 1..12`` (exit 2), a numeric ``content`` raised TypeError and an unreadable
    transcript (a symlink loop) OSError; now each is reported with its place and the rest is harvested."""
    said = "Telegram reaction added: 👍 by Ada (@ada) on msg {}"
    src = tmp_path / "sessions"
    src.mkdir()
    _transcript(src / "a.jsonl", f"System: [2026-13-45 04:55:25 UTC] {said.format(1)}",
                f"System: [2026-03-22 04:55:25 GMT+99] {said.format(2)}", 5,
                f"System: [2026-03-22 04:55:25 GMT+8] {said.format(3)}")
    os.symlink("loop.jsonl", src / "loop.jsonl")
    rep = harvest_openclaw(cfg, [src])
    # the unreadable transcript is read (and quarantined) too: read = accepted + quarantined
    assert (rep.read, rep.accepted, rep.quarantined, rep.added) == (5, 2, 3, 1)
    assert rep.quarantine_samples[:2] == [
        f"{src / 'a.jsonl'}:2: system event time '2026-13-45 04:55:25 UTC': month must be in 1..12",
        (f"{src / 'a.jsonl'}:3: system event time '2026-03-22 04:55:25 GMT+99': offset must be a timedelta "
         "strictly between -timedelta(hours=24) and timedelta(hours=24), not datetime.timedelta(days=4, seconds=10800).")]
    assert rep.quarantine_samples[2].startswith(f"{src / 'loop.jsonl'}: unreadable: [Errno 40]")
    (row,) = read_ledger(cfg.ledger).rows
    assert (row.message_id, row.time.isoformat()) == (3, "2026-03-21T20:55:25+00:00")
    with pytest.raises(ValueError, match="system event time"):
        event_time("2026-02-30 10:00:00", None)


def test_an_updates_path_that_is_a_folder_is_quarantined(cfg, tmp_path):
    """``--updates DIR`` raised IsADirectoryError out of the harvest."""
    folder, dump = tmp_path / "dir", tmp_path / "updates.json"
    folder.mkdir()
    dump.write_bytes(orjson.dumps([reaction(1, 10, [], ["👍"])]))
    rep = harvest_dumps(cfg, [folder, dump])
    assert (rep.read, rep.accepted, rep.quarantined, rep.added) == (2, 1, 1, 1)
    assert rep.quarantine_samples[0].startswith(f"{folder}:<file>: unreadable: [Errno 21]")


def test_mapping_set_refuses_nan_and_infinity(cfg):
    """``feedback mapping set 👍 nan`` saved the score as null (JSON has no NaN), and every later
    command then failed on the mapping file."""
    from tracebridge.feedback.mapping import set_score

    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="must be a finite number"):
            set_score(cfg.mapping, "👍", bad)
    assert not Path(cfg.mapping).exists()
    set_score(cfg.mapping, "👍", 3)
    assert load_mapping(cfg.mapping).scores["👍"] == 3.0


def test_mapping_set_takes_a_negative_score_from_the_command_line(cfg):
    """``tracebridge feedback mapping set 👎 -2`` failed with "No such option: -2": a person could not
    make a reaction more negative without knowing to write ``--`` first."""
    from typer.testing import CliRunner

    from tracebridge.cli import app

    r = CliRunner().invoke(app, ["feedback", "mapping", "set", "👎", "-2", "--mapping", cfg.mapping, "--json"])
    assert r.exit_code == 0, r.output
    assert load_mapping(cfg.mapping).scores["👎"] == -2.0
    r = CliRunner().invoke(app, ["feedback", "mapping", "set", "👎", "-x", "--mapping", cfg.mapping])
    assert r.exit_code == 2 and "score='-x': a number or 'none'" in r.output


def test_a_bare_emoji_table_is_refused_with_the_shape_to_use(tmp_path):
    """``{"👍": 1, "👎": -1}`` (what a person writes by hand, and what the monthly review reads) was
    refused with "expected an object of emoji to score" — which is what it is."""
    bare = tmp_path / "m.json"
    bare.write_text('{"👍": 1, "👎": -1}')
    with pytest.raises(ValueError, match=r'expected \{"version": N, "mapping": \{emoji: score\}\}; this file is a bare'):
        load_mapping(bare)
