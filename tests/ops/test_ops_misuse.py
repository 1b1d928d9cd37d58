"""Operations commands on bad input: a located error and a non-zero exit, never a traceback; state
left whole; a threshold that cannot decide never lets a gate pass."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import orjson
import pytest

from tests.ops.test_cli import ROOT, run
from tests.ops.test_gates import make_samples
from tests.ops.test_promotion import gate_report
from tests.ops.test_review import NOW, good_set
from tracebridge.ops import replay as rp
from tracebridge.ops.config import GateConfig, MonthlyConfig, OpsConfig, ReviewConfig, WeeklyConfig
from tracebridge.ops.gates import evaluate_gates
from tracebridge.ops.monthly import monthly_review
from tracebridge.ops.phase2 import reproduce
from tracebridge.ops.promotion import PolicyState, PromotionError, promote, read_history, rollback
from tracebridge.ops.review import review
from tracebridge.ops.samples import load_samples_file
from tracebridge.ops.shadow_steps import STEPS
from tracebridge.ops.weekly import run_weekly

# --------------------------------------------------------------------------- promotion state


def test_history_line_that_is_not_an_object_is_located(tmp_path):
    st = PolicyState(tmp_path / "state")
    st.root.mkdir()
    st.history_path.write_text("[1, 2]\n")
    for call in (lambda: promote(st, gate_report(tmp_path / "g.json", "v2", "v1")), lambda: rollback(st)):
        with pytest.raises(PromotionError, match=r"history.jsonl:1: a record must be a JSON object, not list"):
            call()
    r = run("ops", "policy", "--state", st.root, "--json")
    assert r.exit_code == 1 and "not list" in json.loads(r.stdout)["problems"][0]


def test_damaged_active_json_is_reported_then_repaired_from_history(tmp_path):
    st = PolicyState(tmp_path / "state")
    promote(st, gate_report(tmp_path / "g.json", "v2", "v1"))
    for damage in (b"", b"garbage", b"[1]"):
        st.active_path.write_bytes(damage)
        r = run("ops", "policy", "--state", st.root)
        assert r.exit_code == 1 and "active.json" in r.output and "repaired" in r.output
    back = rollback(st)  # history is the truth: the change goes through and rewrites active.json
    assert orjson.loads(st.active_path.read_bytes()) == back and back["active_policy"] == "v1"
    assert run("ops", "policy", "--state", st.root).exit_code == 0


def test_policy_lists_a_record_with_missing_fields_without_crashing(tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "history.jsonl").write_text('{"seq": "x"}\n')
    r = run("ops", "policy", "--state", tmp_path / "state")
    assert r.exit_code == 1 and "history.jsonl:1:seq" in r.output


def test_state_path_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "state"
    f.write_text("x")
    for args in (["promote", "--report", gate_report(tmp_path / "g.json", "v2", "v1")], ["rollback"],
                 ["ops", "policy"]):
        r = run(*args, "--state", f)
        assert r.exit_code == 2 and "not a folder" in r.output
    assert f.read_text() == "x"


def test_report_that_is_not_an_object_is_not_a_gate_report(tmp_path):
    p = tmp_path / "r.json"
    p.write_text("5")
    with pytest.raises(PromotionError, match="not a gate report"):
        promote(PolicyState(tmp_path / "state"), p)
    assert read_history(PolicyState(tmp_path / "state")) == []


# --------------------------------------------------------------------------- gates and samples


def test_samples_with_unusable_values_are_skipped_with_their_place(tmp_path):
    rows = [{"session_id": f"c{i}", "arm": "candidate"} for i in range(5)]
    bad = [("tokens", "abc"), ("cost_usd", -5.0), ("success", "no"), ("latency_ms", None), ("tokens", None)]
    for row, (k, v) in zip(rows, bad):
        row[k] = v
    rows[3]["verdicts_correct"], rows[3]["verdicts_total"] = 5, 0  # latency None is fine; this is not
    p = tmp_path / "s.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ss = load_samples_file(p)
    assert [s["where"] for s in ss.skipped] == [f"{p}:1:tokens", f"{p}:2:cost_usd", f"{p}:3:success",
                                                f"{p}:4:verdicts_correct", f"{p}:5:tokens"]
    assert ss.counts()["read"] == 5 and ss.counts()["skipped"] == 5
    r = run("gate", "--samples", p, "--json")  # no traceback: the gate fails on too few samples
    assert r.exit_code == 1


def test_nan_threshold_is_a_config_error_not_a_pass(tmp_path):
    regressed = make_samples(tokens=(1000, 3000))  # a NaN limit compares False: this would pass
    assert not evaluate_gates(regressed, GateConfig()).passed
    assert "max_token_increase=nan: must be a finite number >= 0" in GateConfig(max_token_increase=math.nan).validate()[0]
    p = tmp_path / "s.jsonl"
    p.write_text("")
    for ov in ("max_token_increase=nan", "success.max_drop=nan", "max_p95_increase=inf"):
        r = run("gate", "--samples", p, ov)
        assert r.exit_code == 2 and ov.split("=")[0] in r.output


def test_gate_inputs_are_checked_before_anything_runs(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text("")
    cases = [(["--traces", p], "--traces"), (["--samples", tmp_path], "--samples"),
             (["--samples", p, "--out", tmp_path], "is a folder"),
             (["--samples", p, "--since", "2026-03-01"], "--traces only"),
             (["--traces", tmp_path, "--since", "yesterday"], "not an ISO timestamp"),
             (["--samples", p, "--config", tmp_path / "typo.yaml"], "no such config file")]
    for args, msg in cases:
        r = run("gate", *args)
        assert r.exit_code == 2 and msg in r.output, (args, r.output)
    r = run("ops", "canary-status", "--config", tmp_path / "typo.yaml", "--session", "a")
    assert r.exit_code == 2 and "no such config file" in r.output


def test_a_timestamp_before_year_one_in_utc_is_a_usage_error_not_a_traceback(tmp_path):
    """``gate --since 0001-01-01T00:00:00+05:00`` is before year 1 once in UTC: it raised OverflowError with a
    traceback. ``--since`` and ``review --now`` now read their timestamps through one function that says so."""
    for args in (["gate", "--traces", tmp_path, "--since", "0001-01-01T00:00:00+05:00"],
                 ["review", "--artifacts", tmp_path, "--now", "0001-01-01T00:00:00+05:00"]):
        r = run(*args)
        assert r.exit_code == 2, r.output  # a traceback exits 1
        assert "not an ISO timestamp in years 1..9999 UTC" in r.output, r.output


def test_a_policy_flag_that_contradicts_the_sessions_is_refused(tmp_path):
    """``gate --baseline-policy zz`` on sessions that carry baseline policy p0 wrote a passing report naming zz:
    ``promote`` then checked the active policy against a name no session ran. The flag now names only the
    policy of sessions that carry none; one that contradicts them exits 2 naming what they carry."""
    rows = [{"session_id": f"{a}{i}", "arm": a, "policy": {"baseline": "p0", "candidate": "p1"}[a]}
            for a in ("baseline", "candidate") for i in range(3)]
    rows += [{"session_id": "n", "arm": "candidate"}]
    p = tmp_path / "s.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = run("gate", "--samples", p, "--baseline-policy", "zz", "--json")
    assert r.exit_code == 2 and json.loads(r.stdout)["error"].startswith(
        "--baseline-policy zz: the baseline sessions carry policy p0 (3 sessions)")
    r = run("gate", "--samples", p, "--baseline-policy", "p0", "--candidate-policy", "p1", "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["policies"] == {"baseline": "p0", "candidate": "p1"}
    p.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "policy"}) + "\n" for r in rows))
    r = run("gate", "--samples", p, "--baseline-policy", "zz", "--json")  # sessions without a policy: the flag names it
    assert r.exit_code == 1 and json.loads(r.stdout)["policies"] == {"baseline": "zz", "candidate": "candidate"}


# --------------------------------------------------------------------------- review


def _rewrite_manifest(bundle, **fields):
    m = bundle / "manifest.json"
    man = orjson.loads(m.read_bytes())
    man.update(fields)
    m.chmod(0o644)
    m.write_bytes(orjson.dumps(man))


@pytest.mark.parametrize("fields", [{"steps": []}, {"steps": {"runtime_hook": "ok"}}, {"uplift": "high"},
                                    {"integrity": [1]}, {"feedback": "x"}, {"files": 5}, {"files": [1]},
                                    {"chunk_policy": {"doc_sha256": "a", "applied": True, "batches": "many"}}])
def test_review_reports_a_misshapen_manifest_with_its_key(tmp_path, fields):
    bundles = good_set(tmp_path)
    _rewrite_manifest(bundles[1], **fields)
    rep = review(tmp_path, ReviewConfig(), now=NOW)
    line = {ln.criterion: ln for ln in rep.lines}["cycles"]
    assert not rep.passed and f"manifest.json:{next(iter(fields))}" in line.evidence


def test_review_manifest_that_is_a_list_and_bool_uplift(tmp_path):
    bundles = good_set(tmp_path)
    (bundles[0] / "manifest.json").chmod(0o644)
    (bundles[0] / "manifest.json").write_text("[1, 2]")
    _rewrite_manifest(bundles[1], uplift={"uplift": True})
    lines = {ln.criterion: ln for ln in review(tmp_path, ReviewConfig(), now=NOW).lines}
    assert "not a JSON object" in lines["cycles"].evidence
    assert not lines["uplift"].passed and "no uplift figure" in lines["uplift"].evidence


def test_review_config_and_clock_inputs(tmp_path):
    assert ReviewConfig(min_uplift=math.nan).problems() and ReviewConfig(integrity_tolerance=math.nan).problems()
    # each value out of range is named alone (``--days 0`` was told "review.days=0, review.min_cycles=3")
    assert ReviewConfig(days=0).problems() == ["review.days=0: must be >= 1"]
    assert ReviewConfig(min_cycles=0).problems() == ["review.min_cycles=0: must be >= 1"]
    good_set(tmp_path / "a")
    (tmp_path / "f").write_text("x")
    cases = [(["--days", 100_000_000], "at most"), (["--now", "0001-01-02T00:00:00Z"], "too early"),
             (["--now", "2026-02-30T00:00:00Z"], "day is out of range"), (["--artifacts", tmp_path / "f"], "not a folder")]
    for args, msg in cases:
        r = run("review", "--artifacts", tmp_path / "a", *args)
        assert r.exit_code == 2 and msg in r.output, (args, r.output)


# --------------------------------------------------------------------------- shadow cycle, replay


def test_shadow_cycle_setup_errors_write_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shadow.yaml").write_text("shadow: {work_dir: shadow}\n")
    (tmp_path / "afile").write_text("x")
    cases = [("shadow.work_dir=afile", "shadow.work_dir=afile: not a folder"),
             ("artifacts_dir=afile", "artifacts_dir=afile: not a folder"),
             # under a file: was a NotADirectoryError traceback (exit 1) once the cycle had its lock
             ("shadow.work_dir=afile/w", "shadow.work_dir=afile/w: afile is a file, not a folder"),
             ("artifacts_dir=afile/a", "artifacts_dir=afile/a: afile is a file, not a folder"),
             ("shadow.skip=[optimise]", "no step named optimise"),
             ("shadow.lock_timeout_s=nan", "finite")]
    for ov, msg in cases:
        r = run("shadow-cycle", "--config", "shadow.yaml", ov)
        assert r.exit_code == 2 and msg in r.output, (ov, r.output)
    for ov, msg in cases[:4]:  # shadow-prune reads and removes under the same folders
        r = run("shadow-prune", "--config", "shadow.yaml", ov, "--dry-run")
        assert r.exit_code == 2 and msg in r.output, (ov, r.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "shadow.yaml"]
    from tracebridge.ops.cycle import check_setup

    monkeypatch.chdir(ROOT)  # from the checkout (shadow.chunk_policy_doc is relative, as shipped)
    check_setup(OpsConfig(), STEPS)  # the defaults are fine


@pytest.mark.parametrize("content,where", [("x", "invalid JSON"), ("[1]", "not a JSON object"),
                                           ('{"runs": 3}', ":runs:")])
def test_damaged_replay_manifest_is_located_not_redrawn(tmp_path, content, where):
    (tmp_path / "replay").mkdir()
    (tmp_path / "replay" / rp.REPLAY_MANIFEST).write_text(content)
    with pytest.raises(ValueError, match=where) as exc:
        rp.load_replay_manifest(tmp_path)
    assert rp.REPLAY_MANIFEST in str(exc.value)


# --------------------------------------------------------------------------- cadence


def test_monthly_month_and_out_inputs(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(json.dumps({"time": "2026-02-03T10:00:00Z", "emoji": "👍", "change": "added"}) + "\n")
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"mapping": {"👍": 1}}))
    rep = monthly_review(ledger, mapping, "2026-2")  # not zero-padded: the same month, not an empty one
    assert rep["month"] == "2026-02" and rep["emojis"]["2026-02"]["net"] == {"👍": 1}
    assert MonthlyConfig(drift_alpha=math.nan).problems()
    (tmp_path / "f").write_text("x")
    # the default config agrees with shadow.yaml (agree_with): files given on the command line are named as
    # overrides, before any work; agree_with=[] is a one-off review of other files
    r = run("ops", "monthly-review", f"monthly.ledger={ledger}", "--month", "2026-02", "--out", tmp_path / "no")
    assert r.exit_code == 2 and f"configs/ops/monthly.yaml with the overrides given has monthly.ledger={ledger}" \
        in r.output.replace("\n", "") and "monthly.mapping" not in r.output and not (tmp_path / "no").exists()
    base = ["ops", "monthly-review", f"monthly.ledger={ledger}", f"monthly.mapping={mapping}", "agree_with=[]"]
    for args, msg in ((["--month", "2026-13"], "--month 2026-13"), (["--month", "0001-01"], "--month 0001-01"),
                      (["--month", "2026-02", "--out", tmp_path / "f"], "not a folder")):
        r = run(*base, *args)
        assert r.exit_code == 2 and msg in r.output, (args, r.output)
    assert run(*base, "--month", "2026-2", "--out", tmp_path / "out").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["monthly-2026-02.json", "monthly-2026-02.md"]


def test_monthly_missing_ledger_is_a_usage_error_before_any_work(tmp_path):
    # before: exit 0, a report of an empty month proposing to review every mapped emoji
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"mapping": {"👍": 1, "👎": -1}}))
    missing = tmp_path / "no-ledger.jsonl"
    r = run("ops", "monthly-review", f"monthly.ledger={missing}", f"monthly.mapping={mapping}", "agree_with=[]",
            "--month", "2026-02", "--out", tmp_path / "out")
    assert r.exit_code == 2, r.output
    assert f"configs/ops/monthly.yaml: monthly.ledger={missing}: no such file" in r.output.replace("\n", "")
    assert not (tmp_path / "out").exists()


def test_weekly_paths_and_budgets_are_checked_before_anything_runs(tmp_path):
    assert WeeklyConfig(max_hours=math.nan).problems() and WeeklyConfig(days=10**8).problems()
    (tmp_path / "f").write_text("x")
    (tmp_path / "traces").mkdir()
    cfgs = [(WeeklyConfig(traces=str(tmp_path / "none")), "no such trace root"),
            (WeeklyConfig(traces=str(tmp_path / "traces"), bundles_dir=str(tmp_path / "f")), "not a folder"),
            # under a file: the dry run passed it (exit 0), the real run met a NotADirectoryError
            (WeeklyConfig(traces=str(tmp_path / "traces"), bundles_dir=str(tmp_path / "f" / "b")),
             f"weekly.bundles_dir={tmp_path / 'f' / 'b'}: {tmp_path / 'f'} is a file, not a folder")]
    for cfg, msg in cfgs:
        for dry_run in (True, False):
            with pytest.raises(ValueError, match=msg):
                run_weekly(cfg, tmp_path / "art", ["false"], dry_run=dry_run)
    cfg = WeeklyConfig(traces=str(tmp_path / "traces"), bundles_dir=str(tmp_path / "b"))
    with pytest.raises(ValueError, match="weekly.artifacts_dir"):
        run_weekly(cfg, tmp_path / "f", ["false"])
    with pytest.raises(ValueError, match=f"weekly.artifacts_dir={tmp_path / 'f' / 'a'}: {tmp_path / 'f'} is a file"):
        run_weekly(cfg, tmp_path / "f" / "a", ["false"], dry_run=True)
    assert not (tmp_path / "b").exists() and not (tmp_path / "art").exists()


@pytest.mark.parametrize("key", ["sweep_config", "cluster", "export_config"])
def test_weekly_files_the_window_reads_are_checked_before_the_export_and_push(tmp_path, key):
    # run from a folder without infra/: the export and the push ran, then the window failed
    (tmp_path / "traces").mkdir()
    cfg = replace(WeeklyConfig(traces=str(tmp_path / "traces"), bundles_dir=str(tmp_path / "b")),
                  **{key: str(tmp_path / "missing.yaml")})
    for dry_run in (True, False):  # the dry run is the preflight
        with pytest.raises(ValueError, match=f"weekly.{key}=.*missing.yaml: no such file"):
            run_weekly(cfg, tmp_path / "art", ["false"], dry_run=dry_run)
    assert not (tmp_path / "b").exists() and not (tmp_path / "art").exists()


@pytest.mark.parametrize("content,msg", [("x", "cannot read"), ("[1]", ":kind:"), ('{"kind": "phase2-ablation"}', ":bundle:")])
def test_phase2_reproduce_from_a_damaged_manifest(tmp_path, content, msg):
    p = tmp_path / "manifest.json"
    p.write_text(content)
    with pytest.raises(ValueError, match=msg):
        reproduce(p, tmp_path / "out")
    with pytest.raises(ValueError, match="cannot read"):
        reproduce(tmp_path / "missing.json", tmp_path / "out")
