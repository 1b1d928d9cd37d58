"""Promotion needs a gate pass, rollback restores, concurrent changes keep the history consistent."""

from __future__ import annotations

import json
import multiprocessing as mp

import orjson
import pytest

from tests.ops.test_cli import run
from tests.ops.test_gates import make_samples
from tracebridge.ops.config import GateConfig
from tracebridge.ops.gates import evaluate_gates, write_gate_report
from tracebridge.ops.promotion import (
    PolicyState,
    PromotionError,
    active_record,
    promote,
    read_history,
    rollback,
    verify_history,
)


def gate_report(path, candidate, baseline, passed=True):
    ss = make_samples(n=200 if passed else 10)
    rep = evaluate_gates(ss, GateConfig(), policies={"candidate": candidate, "baseline": baseline})
    assert rep.passed == passed
    return write_gate_report(rep, path)


def test_promote_refuses_without_gate_pass(tmp_path):
    st = PolicyState(tmp_path / "state")
    bad = gate_report(tmp_path / "fail.json", "v2", "v1", passed=False)
    with pytest.raises(PromotionError, match="gate did not pass") as exc:
        promote(st, bad)
    assert read_history(st) == [] and active_record(st) is None
    reasons = json.loads(bad.read_text())["reasons"]  # whole reasons, and how many more (was cut at 500 mid-word)
    said = str(exc.value).split("gate did not pass: ", 1)[1]
    shown = [r for r in reasons if r in said]
    assert shown == reasons[:len(shown)] and f"; and {len(reasons) - len(shown)} more (the report's reasons)" in said
    with pytest.raises(PromotionError, match="cannot read gate report"):
        promote(st, tmp_path / "missing.json")


def test_promote_refuses_an_edited_report(tmp_path):
    st = PolicyState(tmp_path / "state")
    p = gate_report(tmp_path / "fail.json", "v2", "v1", passed=False)
    rep = orjson.loads(p.read_bytes())
    rep["passed"] = True  # hand-edited to pass
    p.write_bytes(orjson.dumps(rep))
    with pytest.raises(PromotionError, match="report was edited"):
        promote(st, p)


def test_promote_then_rollback_restores(tmp_path):
    st = PolicyState(tmp_path / "state")
    r1 = promote(st, gate_report(tmp_path / "g1.json", "v2", "v1"))
    assert (r1["active_policy"], r1["previous_policy"], r1["stack"]) == ("v2", "v1", ["v1", "v2"])
    assert r1["gate"]["passed"] and r1["report_id"]
    r2 = promote(st, gate_report(tmp_path / "g2.json", "v3", "v2"))
    assert active_record(st)["active_policy"] == "v3"
    with pytest.raises(PromotionError, match="stale report"):
        promote(st, gate_report(tmp_path / "g3.json", "v4", "v2"))
    with pytest.raises(PromotionError, match="already the active policy"):
        promote(st, gate_report(tmp_path / "g4.json", "v3", "v3"))
    back = rollback(st)
    assert (back["action"], back["active_policy"], back["previous_policy"]) == ("rollback", "v2", "v3")
    assert active_record(st)["active_policy"] == "v2"
    assert rollback(st)["active_policy"] == "v1"
    with pytest.raises(PromotionError, match="nothing to roll back"):
        rollback(st)
    hist = read_history(st)
    assert [h["seq"] for h in hist] == [1, 2, 3, 4] and verify_history(hist) == []
    assert hist[1]["hash"] == r2["hash"] and hist[2]["prev_hash"] == r2["hash"]


def test_history_tampering_is_detected_and_half_done_change_repaired(tmp_path):
    st = PolicyState(tmp_path / "state")
    promote(st, gate_report(tmp_path / "g1.json", "v2", "v1"))
    promote(st, gate_report(tmp_path / "g2.json", "v3", "v2"))
    # a change that died after appending history but before replacing active.json
    st.active_path.write_bytes(orjson.dumps(read_history(st)[0]))
    rollback(st)
    assert active_record(st) == read_history(st)[-1] and active_record(st)["active_policy"] == "v2"
    lines = st.history_path.read_bytes().splitlines()
    rec = orjson.loads(lines[0])
    rec["active_policy"] = "evil"
    st.history_path.write_bytes(b"\n".join([orjson.dumps(rec), *lines[1:]]) + b"\n")
    assert any("hash" in p for p in verify_history(read_history(st)))
    with pytest.raises(PromotionError, match="inconsistent"):
        rollback(st)


def _race_once(state_dir, report, barrier, out):
    barrier.wait()
    try:
        out.put(("ok", promote(PolicyState(state_dir), report)["active_policy"]))
    except PromotionError as exc:
        out.put(("refused", str(exc)))


def _churn(state_dir, report, n, barrier, out):
    st = PolicyState(state_dir)
    barrier.wait()
    done = refused = 0
    for i in range(2 * n):
        try:
            promote(st, report, require_baseline_match=False, allow_reused_report=True) if i % 2 == 0 else rollback(st)
            done += 1
        except PromotionError as exc:  # the other process got there first: a clean refusal
            assert "already the active policy" in str(exc) or "nothing to roll back" in str(exc), exc
            refused += 1
    out.put((done, refused))


def test_two_concurrent_promotions_leave_a_consistent_history(tmp_path):
    ctx = mp.get_context("spawn")
    state_dir = tmp_path / "state"
    reports = [gate_report(tmp_path / f"g{i}.json", f"cand-{i}", "v1") for i in (1, 2)]
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race_once, args=(state_dir, r, barrier, out)) for r in reports]
    for p in procs:
        p.start()
    results = sorted(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
    assert [r[0] for r in results] == ["ok", "refused"]
    assert "stale report" in results[1][1] or "already" in results[1][1]
    hist = read_history(PolicyState(state_dir))
    assert len(hist) == 1 and verify_history(hist) == []
    assert active_record(PolicyState(state_dir)) == hist[0]

    # both processes promoting and rolling back in a loop: every change lands, in one chain
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_churn, args=(state_dir, r, 8, barrier, out)) for r in reports]
    for p in procs:
        p.start()
    counts = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert sum(d + r for d, r in counts) == 2 * 16
    st = PolicyState(state_dir)
    hist = read_history(st)
    assert len(hist) == 1 + sum(d for d, _ in counts) and verify_history(hist) == []
    assert active_record(st) == hist[-1]
    stack = ["v1"]  # replaying the actions gives every record's stack
    for h in hist:
        stack = stack + [h["active_policy"]] if h["action"] == "promote" else stack[:-1]
        assert h["stack"] == stack


def test_a_gate_report_promotes_once_so_a_rolled_back_candidate_needs_a_fresh_gate(tmp_path):
    st = PolicyState(tmp_path / "state")
    g1 = gate_report(tmp_path / "g1.json", "v2", "v1")
    promote(st, g1)
    rollback(st)  # v2 misbehaved in production
    with pytest.raises(PromotionError, match="already promoted v2 .record 1."):
        promote(st, g1)
    assert active_record(st)["active_policy"] == "v1" and len(read_history(st)) == 2
    fresh = evaluate_gates(make_samples(n=300), GateConfig(), policies={"candidate": "v2", "baseline": "v1"})
    assert promote(st, write_gate_report(fresh, tmp_path / "g2.json"))["active_policy"] == "v2"


def test_ops_policy_names_a_torn_last_record_instead_of_staying_silent(tmp_path):
    # before: `ops policy` printed "1 records" and nothing else for a history whose last promote was killed
    # mid-append; the operator had no sign that a change had died
    st = PolicyState(tmp_path / "state")
    promote(st, gate_report(tmp_path / "g1.json", "v1", "base"), require_baseline_match=False)
    whole = st.history_path.read_bytes()
    with st.history_path.open("ab") as fh:
        fh.write(whole[: len(whole) // 2])  # half of a record, no newline: a change killed mid-append
    r = run("ops", "policy", "--state", st.root, "--json")
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["ok"] and doc["records"] == 1  # it never took effect: no problem
    assert doc["torn"].startswith(f"{st.history_path}:2: unterminated last line ({len(whole) // 2} bytes)")
    r = run("ops", "policy", "--state", st.root)
    assert f"note: {st.history_path}:2: unterminated last line" in r.stdout
    back = rollback(st)  # the next change moves the fragment aside: the note goes
    assert back["active_policy"] == "base" and json.loads(run("ops", "policy", "--state", st.root, "--json").stdout)["torn"] is None


def test_an_active_policy_the_history_does_not_hold_stops_every_change(tmp_path):
    # history.jsonl lost (or cut back to an older copy) while active.json still names v2: `ops policy` said ok,
    # and promote took the report's baseline for the active policy, so a report gating v3 against v1 passed
    # its stale check while v2 was live, recorded "previous v1", and its rollback went to v1, not v2
    st = PolicyState(tmp_path / "state")
    promote(st, gate_report(tmp_path / "g1.json", "v2", "v1"))
    st.history_path.unlink()
    g3 = gate_report(tmp_path / "g3.json", "v3", "v1")
    for change in (lambda: promote(st, g3), lambda: rollback(st)):
        with pytest.raises(PromotionError, match=r"active policy 'v2' \(record 1\) is not in .*history.jsonl"):
            change()
    assert active_record(st)["active_policy"] == "v2" and not st.history_path.exists()  # nothing written
    r = run("ops", "policy", "--state", st.root, "--json")
    doc = json.loads(r.stdout)
    assert r.exit_code == 1 and not doc["ok"] and "the history was lost, cut or replaced" in doc["problems"][0]
    r = run("promote", "--report", g3, "--state", st.root, "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["promoted"] is False


def test_a_rollback_to_a_model_folder_that_is_gone_is_refused_unless_allowed(tmp_path):
    # policy ids are model folders (README: name them after what they are); v1's folder was deleted by hand:
    # rollback switched the runtime to a model nobody could load, in the middle of an incident
    st = PolicyState(tmp_path / "state")
    v1, v2 = tmp_path / "models" / "v1", tmp_path / "models" / "v2"
    v1.mkdir(parents=True)
    v2.mkdir()
    promote(st, gate_report(tmp_path / "g1.json", str(v1), "base"))
    promote(st, gate_report(tmp_path / "g2.json", str(v2), str(v1)))
    v1.rmdir()
    with pytest.raises(PromotionError, match=f"{v1}: the policy to roll back to .* no longer exists"):
        rollback(st)
    assert active_record(st)["active_policy"] == str(v2) and len(read_history(st)) == 2  # nothing changed
    r = run("rollback", "--state", st.root, "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["rolled_back"] is False
    r = run("rollback", "--state", st.root, "--allow-missing", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["record"]["active_policy"] == str(v1)
    assert rollback(st)["active_policy"] == "base"  # an id that is no path is not checked


def test_a_change_that_finds_the_policy_lock_taken_exits_3_and_changes_nothing(tmp_path):
    # before: exit 1, the code of a refused gate report, so a cron script could not tell "try again" from "refused"
    st = PolicyState(tmp_path / "state")
    promote(st, gate_report(tmp_path / "g1.json", "v2", "v1"))
    cfg = tmp_path / "canary.yaml"
    cfg.write_text(f"promotion: {{state_dir: {st.root}, lock_timeout_s: 0.2}}\n")
    g2 = gate_report(tmp_path / "g2.json", "v3", "v2")
    with PolicyState(st.root).lock():  # a change (or a prune reading the history) that does not finish
        r = run("promote", "--report", g2, "--config", cfg, "--json")
        back = run("rollback", "--config", cfg, "--json")
    doc = json.loads(r.stdout)
    assert r.exit_code == 3 and doc["promoted"] is False and "held the policy lock for 0.2 s" in doc["error"]
    assert back.exit_code == 3 and json.loads(back.stdout)["rolled_back"] is False
    assert len(read_history(st)) == 1
    assert run("promote", "--report", g2, "--config", cfg).exit_code == 0
    for bad in ("nan", "-1"):  # FileLock reads a negative timeout as "wait forever"
        cfg.write_text(f"promotion: {{state_dir: {st.root}, lock_timeout_s: {bad}}}\n")
        r = run("rollback", "--config", cfg)
        assert r.exit_code == 2 and f"promotion.lock_timeout_s={float(bad)}: must be a finite number >= 0" in r.output


def test_a_change_that_waited_out_the_policy_lock_names_the_holder_pid_and_command(tmp_path):
    # before: "another promote, rollback or prune held the policy lock" and no more: the lock keeps no holder
    # note (one more write per change), so the holder is read from /proc/locks
    import subprocess
    import sys

    st = PolicyState(tmp_path / "state")
    promote(st, gate_report(tmp_path / "g1.json", "v2", "v1"))
    cfg = tmp_path / "canary.yaml"
    cfg.write_text(f"promotion: {{state_dir: {st.root}, lock_timeout_s: 0.2}}\n")
    hold = ("import sys\nfrom tracebridge.ops.promotion import PolicyState\n"
            "with PolicyState(sys.argv[1]).lock():\n    print('held', flush=True)\n    sys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(st.root), "--as-a-rollback"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        r = run("promote", "--report", gate_report(tmp_path / "g2.json", "v3", "v2"), "--config", cfg, "--json")
        back = run("rollback", "--config", cfg, "--json")
    finally:
        holder.communicate("", timeout=60)
    said = f"held the policy lock for 0.2 s (held by pid {holder.pid} ({sys.executable} -c "
    assert r.exit_code == 3 and said in json.loads(r.stdout)["error"], r.stdout
    assert back.exit_code == 3 and said in json.loads(back.stdout)["error"], back.stdout
    assert f"{st.root} --as-a-rollback)); nothing was changed: try again" in json.loads(back.stdout)["error"]
    assert len(read_history(st)) == 1
