"""Shadow-cycle steps on real inputs: replay set, consumer checks, optimization smoke, chunk policy."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import record_sample_run
from tracebridge.ops import replay as rp
from tracebridge.ops.chunks import check_chunk_policy
from tracebridge.ops.config import OpsConfig
from tracebridge.ops.consumers import check_views_parse
from tracebridge.ops.cycle import Ctx, StepFailed
from tracebridge.ops.shadow_steps import audited_day, step_feedback, step_import, step_validate

ROOT = Path(__file__).resolve().parents[2]
REPLAY_MANIFEST_NAME = "replay-manifest.json"
VIEWS = ROOT / "tests/data/train_views"


def _ctx(tmp_path, **outputs):
    cfg = OpsConfig(artifacts_dir=str(tmp_path / "artifacts"))
    cfg.shadow.work_dir = str(tmp_path / "work")
    bundle = tmp_path / "artifacts" / "20260301T021500Z"
    bundle.mkdir(parents=True)
    ctx = Ctx(cfg, bundle, Path(cfg.shadow.work_dir), dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
              [sys.executable, "-m", "tracebridge.cli"])
    ctx.outputs.update(outputs)
    return ctx


def _feedback_files(ctx, tmp_path, harvests):
    """A ledger with one reaction on 2026-02-28 and one on 2026-03-01, and a harvest log of ``harvests``."""
    fb = tmp_path / "memory"
    fb.mkdir()
    sh = ctx.shadow
    sh.feedback_ledger, sh.feedback_mapping = str(fb / "ledger.jsonl"), str(fb / "mapping.json")
    sh.feedback_harvest_log, sh.chunk_registry = str(fb / "harvest-log.jsonl"), str(fb / "chunks.jsonl")
    (fb / "mapping.json").write_text(json.dumps({"version": 1, "mapping": {"❤️": 2, "👍": 1}}))
    (fb / "chunks.jsonl").write_text("")
    (fb / "ledger.jsonl").write_text("".join(json.dumps(
        {"time": t, "chat": 1, "message_id": i, "user": "u1", "emoji": e, "change": "added", "score": s,
         "source": "getUpdates", "update_id": i}) + "\n"
        for i, (t, e, s) in enumerate([("2026-02-28T12:00:00Z", "👍", 1), ("2026-03-01T01:00:00Z", "❤️", 2)])))
    (fb / "harvest-log.jsonl").write_text("".join(json.dumps({"time": t, "added": 1}) + "\n" for t in harvests))


def test_feedback_step_audits_the_previous_complete_utc_day(tmp_path):
    ctx = _ctx(tmp_path)
    ctx.now = dt.datetime(2026, 3, 1, 2, 15, tzinfo=dt.UTC)  # the scheduled time
    _feedback_files(ctx, tmp_path, ["2026-02-28T02:16:00Z", "2026-03-01T02:15:30Z"])
    fb = step_feedback(ctx)["feedback"]
    assert fb["audited_day"] == "2026-02-28" and fb["harvest_ran"] is True
    assert fb["audit_file"] == "feedback/2026-02-28.json"
    audit = json.loads((ctx.bundle / fb["audit_file"]).read_text())
    # the whole of the 28th (its 👍), not the two hours of the 1st (its ❤️)
    assert audit["day"] == "2026-02-28" and audit["by_emoji"] == {"👍": 1} and audit["harvest_runs"] == 1


def test_feedback_step_fails_when_the_previous_day_had_no_harvest(tmp_path):
    # harvests ran on the 26th and this morning (the one a cycle runs just before its audit), not on the 28th
    ctx = _ctx(tmp_path)
    ctx.now = dt.datetime(2026, 3, 1, 2, 15, tzinfo=dt.UTC)
    _feedback_files(ctx, tmp_path, ["2026-02-26T02:16:00Z", "2026-03-01T02:15:30Z"])
    with pytest.raises(StepFailed, match="UTC day 2026-02-28 says harvest_ran=False") as err:
        step_feedback(ctx)
    assert err.value.outputs["feedback"]["audited_day"] == "2026-02-28"
    assert err.value.outputs["feedback"]["harvest_ran"] is False


def test_first_cycle_of_a_host_audits_its_own_day(tmp_path):
    # nothing was harvested before today: there is no previous day to audit, and that is no failure
    ctx = _ctx(tmp_path)
    ctx.now = dt.datetime(2026, 3, 1, 2, 15, tzinfo=dt.UTC)
    _feedback_files(ctx, tmp_path, ["2026-03-01T02:15:30Z"])
    fb = step_feedback(ctx)["feedback"]
    assert fb["audited_day"] == "2026-03-01" and fb["first_harvest_day"] is True and fb["harvest_ran"] is True
    audit = json.loads((ctx.bundle / fb["audit_file"]).read_text())
    assert audit["by_emoji"] == {"❤": 1}  # (normalised: no variation selector) the 1st's reaction; the 28th came before the first harvest


def test_a_future_dated_first_harvest_entry_is_ignored_and_named(tmp_path):
    # the log's first entry was written while the clock was a year ahead: it was taken as the host's first
    # harvest day (on or after today), so the cycle audited its own two hours instead of the 28th
    ctx = _ctx(tmp_path)
    ctx.now = dt.datetime(2026, 3, 1, 2, 15, tzinfo=dt.UTC)
    _feedback_files(ctx, tmp_path, ["2027-03-01T02:16:00Z", "2026-02-28T02:16:00Z", "2026-03-01T02:15:30Z"])
    fb = step_feedback(ctx)["feedback"]
    assert fb["audited_day"] == "2026-02-28" and fb["first_harvest_day"] is False and fb["harvest_ran"] is True
    log = ctx.shadow.feedback_harvest_log
    assert fb["ignored_harvest_entries"] == [f"{log}:1:time: 2027-03-01T02:16:00Z is after today (2026-03-01), ignored"]
    assert audited_day(ctx.now, log) == (dt.date(2026, 2, 28), False, fb["ignored_harvest_entries"])
    # a host whose only earlier entry is future-dated is on its first harvest day: today's harvest counts
    Path(log).write_text("".join(json.dumps({"time": t}) + "\n" for t in ("2027-03-01T02:16:00Z", "2026-03-01T02:15:30Z")))
    assert audited_day(ctx.now, log)[:2] == (dt.date(2026, 3, 1), True)
    Path(log).write_text(json.dumps({"time": "2027-03-01T02:16:00Z"}) + "\n")  # nothing up to today: not a first day
    assert audited_day(ctx.now, log)[:2] == (dt.date(2026, 2, 28), False)


def test_replay_set_is_frozen_stable_and_tamper_evident(tmp_path):
    traces = tmp_path / "traces"
    ids = [record_sample_run(traces, goal=f"goal {i}") for i in range(6)]
    (traces / "broken").mkdir()
    (traces / "broken" / "events.jsonl").write_text("{not json\n")
    work = tmp_path / "work"
    man = rp.freeze_replay_set(traces, work, size=4, salt="s")
    chosen = [e["run_id"] for e in man["runs"]]
    assert len(chosen) == 4 and set(chosen) <= set(ids)
    assert chosen == rp.choose_runs(traces, 4, "s")  # deterministic
    record_sample_run(traces, goal="a new day brings new runs")
    assert rp.verify_replay_set(work, rp.load_replay_manifest(work)) == []
    victim = work / "replay" / "traces" / chosen[0] / "events.jsonl"
    victim.chmod(0o644)
    victim.write_text(victim.read_text().replace("count", "COUNT"))
    assert rp.verify_replay_set(work, man) == [f"{victim.parent}: events file changed since the set was frozen"]


def test_a_replay_set_frozen_short_says_so_until_it_is_redrawn(tmp_path):
    """The set is drawn once, on the first cycle: a host with 2 valid runs that day measured every later
    uplift on those 2 without a word; the replay step's note (its reason in the cycle table) says it."""
    traces, work = tmp_path / "traces", tmp_path / "work"
    for i in range(2):
        record_sample_run(traces, goal=f"goal {i}")
    man = rp.freeze_replay_set(traces, work, size=4, salt="s")
    note = rp.shortfall(man, work)
    assert note.startswith("replay set holds 2 of shadow.replay.size=4 runs") and REPLAY_MANIFEST_NAME in note
    for i in range(2, 6):
        record_sample_run(traces, goal=f"goal {i}")
    (work / "replay" / rp.REPLAY_MANIFEST).unlink()  # the operator's redraw, once there are more runs
    assert rp.shortfall(rp.freeze_replay_set(traces, work, size=4, salt="s"), work) is None


def test_views_parse_check_finds_bad_rows_and_missing_views(tmp_path):
    # the whole consumer step (TRL formatting, Agent Lightning) runs in test_shadow_cycle.py
    bundle = tmp_path / "bundle"
    shutil.copytree(VIEWS, bundle)
    res = check_views_parse(bundle)
    assert res["ok"], res["problems"]
    assert res["files"]["verifier_sft.jsonl"] == 73
    (bundle / "worker_sft.jsonl").unlink()
    assert check_views_parse(bundle)["problems"] == ["worker_sft: no file in the bundle"]
    # a view row that datasets cannot load is found
    with open(bundle / "planner_sft.jsonl", "a") as fh:
        fh.write("{broken\n")
    assert not check_views_parse(bundle)["ok"]


def test_views_parse_check_takes_a_worker_only_bundle_of_real_sessions(tmp_path):
    # OpenClaw sessions give worker rows only: the views the manifest does not list are not missing
    bundle = tmp_path / "bundle"
    shutil.copytree(VIEWS, bundle)
    man = json.loads((bundle / "manifest.json").read_text())
    man["files"] = [f for f in man["files"] if f["path"].startswith("worker_")]
    (bundle / "manifest.json").write_text(json.dumps(man))
    for name in ("planner_sft", "verifier_sft", "verifier_pref_pairs"):
        (bundle / f"{name}.jsonl").unlink()
    res = check_views_parse(bundle)
    assert res["ok"], res["problems"]
    assert sorted(res["files"]) == ["worker_recovery_cases.jsonl", "worker_sft.jsonl"]
    for name in ("worker_sft", "worker_recovery_cases"):
        (bundle / f"{name}.jsonl").unlink()
    assert check_views_parse(bundle)["problems"] == ["no view file in the bundle", "worker_sft: no file in the bundle",
                                                     "worker_recovery_cases: no file in the bundle"]


def test_import_step_counts_runs_not_the_importer_state(tmp_path):
    """``runs_after`` counted ``traces/.import/`` as a run: 13 runs after importing 12 sessions."""
    ctx = _ctx(tmp_path)
    ctx.shadow.sources = [str(ROOT / "tests/data/openclaw/home")]
    out = step_import(ctx)
    runs = sorted(p.name for p in ctx.traces.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert (ctx.traces / ".import").is_dir() and runs and all(r.startswith("oc-") for r in runs)
    assert out["inputs"] == {"runs_before": 0, "runs_after": len(runs)}


def test_validate_step_fails_below_thresholds(tmp_path):
    ctx = _ctx(tmp_path)
    record_sample_run(ctx.traces)
    out = step_validate(ctx)
    assert out["passed"] and out["runs_total"] == 1 and (ctx.bundle / "validate.json").is_file()
    bad = ctx.traces / "bad-run"
    bad.mkdir()
    (bad / "events.jsonl").write_text('{"run_id": "bad-run"}\n')
    (bad / "session.json").write_text("{}")
    with pytest.raises(StepFailed, match="schema-valid") as err:
        step_validate(ctx)
    # the reason says where, not only the rate (the review and the cycle's table show it)
    assert "traces/bad-run/session.json" in str(err.value) and "validate.json" in str(err.value)


def test_chunk_policy_violations_are_found(tmp_path):
    doc = tmp_path / "policy.md"
    doc.write_text("A reaction on the last chunk labels the whole batch.")
    reg = tmp_path / "chunks.jsonl"
    reg.write_text("".join(json.dumps({"batch_id": b, "message_id": i, "chunk_index": i % 2, "chunk_count": 2,
                                       "run_id": "r", "event_id": f"e{i}"}) + "\n"
                           for i, b in enumerate(["b1", "b1", "b2", "b2", "b3", "b3"])) + "{bad\n")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    rows = [({"e0"}, 2), ({"e1"}, 2), ({"e2"}, 1), ({"e3"}, None), ({"e4"}, None), ({"e5"}, None)]
    (bundle / "worker_sft.jsonl").write_text("".join(json.dumps(
        {"messages": [], "meta": {"event_ids": sorted(e), "labels": {} if s is None else {"feedback": {"score": s}}}})
        + "\n" for e, s in rows))
    res = check_chunk_policy(doc, reg, bundle)
    assert res["batches"] == 3 and res["batches_labelled"] == 2 and res["violations"] == 1
    assert "batch b2: 1 of 2 rows unlabelled" in res["violation_examples"][0]
    assert not res["applied"] and len(res["registry_skipped"]) == 1
    assert res["registry_skipped"][0].startswith(f"{reg}:7: invalid JSON")
    res = check_chunk_policy(tmp_path / "missing.md", reg, bundle)
    assert res["doc_sha256"] is None and not res["applied"]


def test_optimize_records_rows_trl_dropped_per_trial():
    from tracebridge.ops.optimize import _rows_per_trial

    doc = {"trials": [{"role": "worker", "variant": "baseline", "seed": 0, "sft/rows_dropped": 82, "sft/rows": 102},
                      {"role": "worker", "variant": "optimized", "seed": 0, "sft/rows_dropped": 0,
                       "dpo/rows_dropped": 45, "sft/rows_fitted": 7, "dpo/rows_fitted": 0}]}
    assert _rows_per_trial(doc, "rows_dropped") == {"worker-baseline-s0": {"sft": 82}, "worker-optimized-s0": {"dpo": 45}}
    assert _rows_per_trial(doc, "rows_fitted") == {"worker-optimized-s0": {"sft": 7}}
    assert _rows_per_trial({"failed": []}, "rows_dropped") == {}


def test_a_failed_command_says_where_its_output_is(tmp_path):
    # `shadow-cycle --bin` pointing at a broken executable: the reason read "exited 1: " and nothing more
    from tracebridge.ops.shadow_steps import run_cli

    ctx = _ctx(tmp_path)
    ctx.cli = ["false"]
    with pytest.raises(StepFailed) as err:
        run_cli(ctx, "import", ["import", "openclaw", "--json"])
    assert str(err.value) == "tracebridge import openclaw exited 1: no output (logs/import.log)"
    assert (ctx.bundle / "logs" / "import.log").is_file()


def _reaction(uid: int, mid: int, emoji: str) -> dict:
    """A getUpdates reaction of user 7 in chat 42 (both bots' chat with that user)."""
    return {"update_id": uid, "message_reaction": {
        "chat": {"id": 42, "type": "private"}, "message_id": mid, "user": {"id": 7, "first_name": "Ada"},
        "date": 1772323200, "old_reaction": [], "new_reaction": [{"type": "emoji", "emoji": emoji}]}}


def _two_bots(ctx, tmp_path):
    """Fresh feedback files and one getUpdates dump per bot, both numbering updates 1000 and 1001."""
    fb = tmp_path / "memory"
    fb.mkdir()
    sh = ctx.shadow
    sh.feedback_ledger, sh.feedback_mapping = str(fb / "ledger.jsonl"), str(fb / "mapping.json")
    sh.feedback_harvest_log, sh.chunk_registry = str(fb / "harvest-log.jsonl"), str(fb / "chunks.jsonl")
    (fb / "mapping.json").write_text(json.dumps({"version": 1, "mapping": {"❤️": 2, "👍": 1, "👎": -1}}))
    for bot, ups in (("111", [_reaction(1000, 5, "👍"), _reaction(1001, 6, "❤️")]),
                     ("222", [_reaction(1000, 9, "👎"), _reaction(1001, 6, "👍")])):
        (fb / f"updates-{bot}.json").write_text(json.dumps({"ok": True, "result": ups}))
    return fb


def test_feedback_step_harvests_each_bot_from_its_own_updates(tmp_path):
    """Two bots share the ledger: the step harvests each bot's dump under its id (update ids are per bot)."""
    from tracebridge.feedback.ledger import read_ledger
    from tracebridge.ops.shadow_config import FeedbackBot

    ctx = _ctx(tmp_path)
    ctx.now = dt.datetime.now(dt.UTC)  # the harvest logs the wall clock: a host's first cycle audits it
    fb = _two_bots(ctx, tmp_path)
    sh = ctx.shadow
    sh.feedback_bot_id, sh.feedback_updates = "111", [str(fb / "updates-111.json")]
    sh.feedback_bots = [FeedbackBot(bot_id="222", updates=[str(fb / "updates-222.json")])]
    assert ctx.cfg.validate() == []
    out = step_feedback(ctx)["feedback"]
    assert out["harvest_ran"] is True
    assert (out["harvested"]["added"], out["harvested"]["quarantined"]) == (4, 0)
    assert sorted(out["harvested"]["bots"]) == ["111", "222"]
    rows = read_ledger(sh.feedback_ledger).rows
    assert sorted((r.raw["bot_id"], r.raw["update_id"], r.message_id) for r in rows) == [
        ("111", 1000, 5), ("111", 1001, 6), ("222", 1000, 9), ("222", 1001, 6)]
    assert sorted(p.name for p in (ctx.bundle / "logs").iterdir()) == [
        "feedback.log", "feedback_harvest.log", "feedback_harvest_222.log"]
    # the next day's cycle: the same dumps again add nothing, under either bot
    again = step_feedback(ctx)["feedback"]["harvested"]
    assert (again["added"], again["duplicates"]) == (0, 4)


def test_feedback_step_without_a_bot_id_stops_on_a_shared_ledger(tmp_path):
    """What the keys fix: a single-bot harvest of a ledger other bots write into is refused (it would mix
    its rows of no bot with theirs); and the config says so before a cycle starts."""
    from tracebridge.ops.shadow_config import FeedbackBot

    ctx = _ctx(tmp_path)
    ctx.now = dt.datetime.now(dt.UTC)
    fb = _two_bots(ctx, tmp_path)
    sh = ctx.shadow
    sh.feedback_updates = [str(fb / "updates-222.json")]
    (fb / "ledger.jsonl").write_text(json.dumps({
        "time": "2026-03-01T00:00:00Z", "chat": 42, "message_id": 5, "user": "u1", "emoji": "👍", "change": "added",
        "score": 1, "source": "getUpdates", "update_id": 1000, "bot_id": "111", "key": "tg@111:42:5:u1"}) + "\n")
    with pytest.raises(StepFailed, match="holds rows of bots 111 .*set bot_id"):
        step_feedback(ctx)
    sh.feedback_bots = [FeedbackBot(bot_id="222", updates=[])]
    assert ctx.cfg.validate() == [
        ("shadow.feedback_bot_id is empty but shadow.feedback_bots is set: the harvest of feedback_updates and "
        "sources would write rows of no bot; set it to their bot's id"),
        "shadow.feedback_bots[0]: give its bot_id and at least one updates file"]
    sh.feedback_bot_id, sh.feedback_bots = "222", [FeedbackBot(bot_id="222", updates=["x.json"])]
    assert ctx.cfg.validate() == [("shadow.feedback_bots[0].bot_id=222: named twice; list each bot once "
                                  "(several dumps of one bot go in its updates)")]
    sh.feedback_bots = [FeedbackBot(bot_id="222:AAsecret", updates=["x.json"])]  # a token pasted for the id
    (problem,) = ctx.cfg.validate()
    assert problem.startswith("shadow.feedback_bots[0].bot_id=<hidden>: looks like a bot token") and "AAsecret" not in problem


def test_feedback_step_passes_the_openclaw_accounts_to_the_harvest(tmp_path):
    """``shadow.feedback_openclaw_accounts`` reaches the harvest of `sources` (before, the cycle had no key for
    the harvest's ``openclaw_accounts``: a host with several Telegram accounts was harvested as one bot)."""
    from tests.feedback.test_openclaw_accounts import _host
    from tracebridge.config import load_config
    from tracebridge.feedback.ledger import read_ledger

    ctx = _ctx(tmp_path)
    ctx.now = dt.datetime.now(dt.UTC)
    _two_bots(ctx, tmp_path)
    sh = ctx.shadow
    sh.sources = [str(_host(tmp_path))]
    # typed, and overridable as key=value on the cycle's own config
    cfg = load_config(OpsConfig, ROOT / "configs/ops/shadow.yaml",
                      ["shadow.feedback_openclaw_accounts.planner=111", "shadow.feedback_openclaw_accounts.Worker=222"])
    sh.feedback_openclaw_accounts = cfg.shadow.feedback_openclaw_accounts
    assert dict(sh.feedback_openclaw_accounts) == {"planner": "111", "Worker": "222"} and ctx.cfg.validate() == []
    out = step_feedback(ctx)["feedback"]["harvested"]
    log = (ctx.bundle / "logs" / "feedback_harvest.log").read_text().splitlines()[0]
    assert "openclaw_accounts.planner=111 openclaw_accounts.Worker=222" in log, log
    assert (out["added"], out["quarantined"]) == (3, 2)  # the planner's, the worker's (2); two unknown accounts
    assert sorted(r.raw.get("bot_id") for r in read_ledger(sh.feedback_ledger).rows) == ["111", "222", "222"]
    sh.feedback_openclaw_accounts = {"planner": ""}
    assert ctx.cfg.validate() == [("shadow.feedback_openclaw_accounts.planner: empty; give the bot id of that "
                                  "account (e.g. the number before ':' in its token)")]


def test_a_source_holding_no_transcript_yet_is_left_out_of_the_harvest_and_named(tmp_path):
    """A host before its first chat: its OpenClaw home holds no transcript. ``feedback harvest --openclaw`` refuses
    such a path (exit 2: logged, it would count as a harvest that ran), so the cycle leaves it out, names it and
    harvests the rest, instead of failing its feedback step on a usage error every day until the first chat."""
    from tests.feedback.test_openclaw_accounts import _host

    ctx = _ctx(tmp_path)
    ctx.now = dt.datetime.now(dt.UTC)
    fb = _two_bots(ctx, tmp_path)
    sh = ctx.shadow
    empty = tmp_path / "new-host" / ".openclaw"
    (empty / "agents" / "main" / "sessions").mkdir(parents=True)
    sh.sources, sh.feedback_bot_id, sh.feedback_updates = [str(empty)], "111", [str(fb / "updates-111.json")]
    out = step_feedback(ctx)["feedback"]
    assert out["harvest_ran"] is True and out["harvested"]["added"] == 2
    assert out["harvested"]["empty_sources"] == [str(empty)]
    assert "--openclaw" not in (ctx.bundle / "logs" / "feedback_harvest.log").read_text().splitlines()[0]
    # a source that holds transcripts is still harvested beside it
    sh.sources = [str(empty), str(_host(tmp_path))]
    again = step_feedback(ctx)["feedback"]["harvested"]
    assert again["empty_sources"] == [str(empty)] and again["added"] > 0
