"""The canary router follows promote and rollback through active.json: the slice while the baseline is
active, every session to the candidate once promoted, every session to the baseline once rolled back."""

from __future__ import annotations

import pytest

from tests.ops.test_canary import _ids
from tests.ops.test_promotion import gate_report
from tracebridge.ops.canary import CanaryRouter
from tracebridge.ops.config import CanaryConfig
from tracebridge.ops.promotion import PolicyState, promote, rollback
from tracebridge.ops.rollout import rollout_arm

CFG = CanaryConfig(fraction=0.2, salt="r", timeout_s=1.0, baseline_policy="v1", candidate_policy="v2")
IDS = _ids(400)


def _served(r: CanaryRouter) -> set[str]:
    return {r.call(s, "q").served_by for s in IDS}


def _router(state) -> CanaryRouter:
    return CanaryRouter(baseline=lambda x: f"base:{x}", candidate=lambda x: f"cand:{x}", config=CFG, state=state)


def test_a_rollback_reaches_the_running_router(tmp_path):
    st = PolicyState(tmp_path / "policy")
    with _router(st) as r:
        assert _served(r) == {"baseline", "candidate"}  # no promotion yet: the canary slice
        promote(st, gate_report(tmp_path / "g1.json", "v2", "v1"))
        assert _served(r) == {"candidate"}
        rollback(st)
        assert _served(r) == {"baseline"}
        assert r.stats["candidate"] > 0 and r.call(IDS[0], "q").output == "base:q"


def test_a_router_started_after_the_rollback_keeps_the_candidate_off(tmp_path):
    st = PolicyState(tmp_path / "policy")
    promote(st, gate_report(tmp_path / "g1.json", "v2", "v1"))
    rollback(st)
    with _router(str(st.root)) as r:  # the folder (promotion.state_dir) works too
        assert _served(r) == {"baseline"}


class _Rec:
    def __init__(self):
        self.labels, self.reasons = {}, []

    def emit(self, event_type, **kw):
        if kw["payload"].get("from_state") == "route":
            self.reasons.append(kw["payload"]["reason"])


def test_the_route_event_says_why_every_session_goes_to_one_arm(tmp_path):
    st = PolicyState(tmp_path / "policy")
    promote(st, gate_report(tmp_path / "g1.json", "v2", "v1"))
    rollback(st)
    rec = _Rec()
    with _router(st) as r:
        r.call(IDS[0], "q", recorder=rec)
    assert rec.reasons == [("rollout: v2 rolled back (record 2): every session to the baseline; a rolled-back "
                            "candidate gets no canary traffic again: to canary a fixed build, give it a new "
                            "canary.candidate_policy id")]


def test_a_damaged_active_json_sends_every_session_to_the_baseline(tmp_path):
    st = PolicyState(tmp_path / "policy")
    st.root.mkdir()
    st.active_path.write_text("{cut")
    with _router(st) as r:
        assert _served(r) == {"baseline"}


def test_a_state_path_that_cannot_be_read_falls_back_loudly(tmp_path, caplog):
    # promotion.state_dir is a file: active.json cannot even be stat'ed. Every session went to the baseline,
    # but the router never logged it (a damaged active.json is logged), so the fallback was silent
    bad = tmp_path / "policy"
    bad.write_text("not a folder")
    with caplog.at_level("WARNING", logger="tracebridge.ops.rollout"), _router(bad) as r:
        assert _served(r) == {"baseline"}
        warned = [rec.getMessage() for rec in caplog.records if "cannot stat" in rec.getMessage()]
        assert len(warned) == 1 and str(bad / "active.json") in warned[0]  # once, not once a call
        bad.unlink()  # fixed: the slice again, re-read without a restart
        assert _served(r) == {"baseline", "candidate"}


@pytest.mark.parametrize("record, arm", [
    (None, None),
    ({"seq": 1, "action": "promote", "active_policy": "v1", "previous_policy": "v0"}, None),
    ({"seq": 2, "action": "promote", "active_policy": "v2", "previous_policy": "v1"}, "candidate"),
    ({"seq": 3, "action": "rollback", "active_policy": "v1", "previous_policy": "v2"}, "baseline"),
    ({"seq": 3, "action": "rollback", "active_policy": "v2", "previous_policy": "v3"}, "candidate"),
    ({"seq": 4, "action": "promote", "active_policy": "v9", "previous_policy": "v1"}, "baseline"),
])
def test_rollout_arm_follows_the_active_record(record, arm):
    assert rollout_arm(record, "v1", "v2")[0] == arm


def test_without_a_state_the_router_keeps_the_slice(tmp_path):
    st = PolicyState(tmp_path / "policy")
    promote(st, gate_report(tmp_path / "g1.json", "v2", "v1"))
    rollback(st)
    with _router(None) as r:
        assert _served(r) == {"baseline", "candidate"}


def test_another_policys_promote_and_rollback_does_not_reopen_the_slice_to_a_rolled_back_candidate(tmp_path):
    # v2 rolled back; then v3 promoted over v1 and rolled back: v1 is active again by a rollback away from v3, and
    # the router read only that record, so the slice went to v2 again
    st = PolicyState(tmp_path / "policy")
    promote(st, gate_report(tmp_path / "g1.json", "v2", "v1"))
    rollback(st)
    with _router(st) as r:
        assert _served(r) == {"baseline"}
        promote(st, gate_report(tmp_path / "g2.json", "v3", "v1"))
        rollback(st)
        assert _served(r) == {"baseline"}
        rec = _Rec()
        r.call(IDS[0], "q", recorder=rec)
    assert rec.reasons[0].startswith("rollout: v2 rolled back (record 2); v1 active again since record 4: ")
    assert "give it a new canary.candidate_policy id" in rec.reasons[0]
    with _router(st) as r:  # a router started now reads the history too
        assert _served(r) == {"baseline"}


def test_a_new_candidate_id_gets_the_slice_after_the_old_one_was_rolled_back(tmp_path):
    st = PolicyState(tmp_path / "policy")
    promote(st, gate_report(tmp_path / "g1.json", "v2", "v1"))
    rollback(st)
    cfg = CanaryConfig(fraction=0.2, salt="r", timeout_s=1.0, baseline_policy="v1", candidate_policy="v2-fix")
    with CanaryRouter(baseline=lambda x: f"base:{x}", candidate=lambda x: f"cand:{x}", config=cfg, state=st) as r:
        assert _served(r) == {"baseline", "candidate"}


@pytest.mark.parametrize("history, arm", [
    # rolled back, then promoted again by a new gate report, then another policy on top rolled back: v2 active
    ([("promote", "v2", "v1"), ("rollback", "v1", "v2"), ("promote", "v2", "v1")], "candidate"),
    # rolled back, promoted again, then replaced by a promotion of v1: the slice (no rollback since its promotion)
    ([("promote", "v2", "v1"), ("rollback", "v1", "v2"), ("promote", "v2", "v1"), ("promote", "v1", "v2")], None),
    ([("promote", "v2", "v1"), ("rollback", "v1", "v2"), ("promote", "v3", "v1"), ("rollback", "v1", "v3")],
     "baseline"),
    ([("promote", "v3", "v1"), ("rollback", "v1", "v3")], None),
])
def test_rollout_arm_reads_the_history(history, arm):
    recs = [{"seq": i, "action": a, "active_policy": act, "previous_policy": prev}
            for i, (a, act, prev) in enumerate(history, start=1)]
    assert rollout_arm(recs[-1], "v1", "v2", recs)[0] == arm


def test_canary_status_says_why_the_slice_is_closed(tmp_path):
    import json

    from typer.testing import CliRunner

    from tracebridge.cli import app
    from tracebridge.ops.canary import in_slice

    st = PolicyState(tmp_path / "policy")
    promote(st, gate_report(tmp_path / "g1.json", "v2", "v1"))
    rollback(st)
    sid = next(s for s in IDS if in_slice(s, 0.2, "r"))
    args = ["ops", "canary-status", "--config", str(tmp_path / "none.yaml"), "--state", str(st.root), "--session",
            sid, "canary.baseline_policy=v1", "canary.candidate_policy=v2", "canary.fraction=0.2"]
    cfg = tmp_path / "none.yaml"
    cfg.write_text("canary: {salt: r}\n")
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "canary slice closed: v2 rolled back (record 2)" in r.stdout and "new canary.candidate_policy id" in r.stdout
    out = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout)
    assert out["rollout"]["arm"] == "baseline" and out["sessions"][sid] == {**out["sessions"][sid], "arm": "baseline",
                                                                              "slice_arm": "candidate"}
    r = CliRunner().invoke(app, [*args[:-3], "canary.baseline_policy=v1", "canary.candidate_policy=v4", "--json"])
    assert json.loads(r.stdout)["rollout"]["arm"] is None  # a new id: the slice routes
    r = CliRunner().invoke(app, ["ops", "canary-status", "--config", str(cfg), "--state", str(tmp_path / "empty"),
                                 "canary.fraction=0.2"])  # no session, no traces: it printed nothing at all
    assert r.exit_code == 0 and r.stdout.startswith("canary slice open: no active policy recorded"), r.output


def test_an_unreadable_history_sends_every_session_to_the_baseline_and_refuses_a_rollback(tmp_path, monkeypatch):
    """Fail-open: a history.jsonl the agent's user may not read (a permission, an I/O error) must not
    raise out of the router's call; promote/rollback refuse it with the file named."""
    from tracebridge.ops import promotion

    st = PolicyState(tmp_path / "policy")
    promote(st, gate_report(tmp_path / "g1.json", "v2", "v1"))
    rollback(st)  # v1 active again: the router reads the history to tell a rollback from a first canary

    def denied(path, *a, **kw):  # root reads any file: the refusal open() gives another user, injected
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(promotion, "iter_lines", denied)
    with _router(st) as r:
        assert _served(r) == {"baseline"}
        assert "cannot be read" in r.rollout.decide("v1", "v2")[1]
    with pytest.raises(promotion.PromotionError, match="history.jsonl: cannot be read"):
        rollback(st)


@pytest.mark.parametrize("damage", ["active", "history"])
def test_canary_status_fails_when_the_promotion_state_cannot_be_read(tmp_path, damage):
    """An active.json (or, with the baseline active, a history) that cannot be read: the router sends every
    session to the baseline, and canary-status printed that and exited 0, as if the state were fine. It says so
    and exits 1 now (a check that failed: its document still written), naming the file."""
    import json

    from typer.testing import CliRunner

    from tracebridge.cli import app

    st = PolicyState(tmp_path / "policy")
    promote(st, gate_report(tmp_path / "g1.json", "v2", "v1"))
    rollback(st)  # v1 active: the router reads the history too
    bad = st.active_path if damage == "active" else st.history_path
    good = st.active_path.read_text()
    bad.write_text("{not json\n")
    cfg = tmp_path / "none.yaml"
    cfg.write_text("canary: {salt: r}\n")
    args = ["ops", "canary-status", "--config", str(cfg), "--state", str(st.root), "canary.baseline_policy=v1",
            "canary.candidate_policy=v2"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1, r.output
    assert f"error: promotion state cannot be read: {bad}" in r.stderr and "canary slice closed" in r.stdout
    r = CliRunner().invoke(app, [*args, "--json"])
    doc = json.loads(r.stdout)
    assert r.exit_code == 1 and doc["ok"] is False and doc["exit_code"] == 1
    assert doc["rollout"]["arm"] == "baseline" and doc["rollout"]["error"].startswith(str(bad))
    st.active_path.write_text(good)  # readable again (a record; {} names no policy, which is an error too)
    if damage == "history":
        st.history_path.unlink()
    r = CliRunner().invoke(app, [*args, "--json"])
    assert r.exit_code == 0 and "error" not in json.loads(r.stdout)["rollout"], r.output
