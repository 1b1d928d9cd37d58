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
    assert rec.reasons == ["rollout: v2 rolled back (record 2): every session to the baseline"]


def test_a_damaged_active_json_sends_every_session_to_the_baseline(tmp_path):
    st = PolicyState(tmp_path / "policy")
    st.root.mkdir()
    st.active_path.write_text("{cut")
    with _router(st) as r:
        assert _served(r) == {"baseline"}


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
