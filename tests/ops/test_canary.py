"""Canary router: deterministic slice, fail-open on exception / timeout / invalid output, events."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import orjson
import pytest

from tests.conftest import MODEL_STACK
from tracebridge.capture.reader import iter_lines
from tracebridge.capture.recorder import Recorder
from tracebridge.config import ConfigError, load_config
from tracebridge.ops.canary import CanaryRouter, in_slice, slice_bucket
from tracebridge.ops.config import CanaryConfig, OpsConfig
from tracebridge.schema.validate import validate_root


def _ids(n: int) -> list[str]:
    return [f"session-{i}" for i in range(n)]


def test_slice_is_deterministic_and_sized():
    ids = _ids(20000)
    a = [in_slice(s, 0.05, "salt") for s in ids]
    b = [in_slice(s, 0.05, "salt") for s in ids]
    assert a == b
    assert 0.04 < sum(a) / len(a) < 0.06
    # a larger fraction only adds sessions; a new salt draws a different slice
    wider = [in_slice(s, 0.10, "salt") for s in ids]
    assert all(w for s, w in zip(a, wider) if s)
    assert sum(wider) > sum(a)
    other = [in_slice(s, 0.05, "other") for s in ids]
    assert other != a
    assert slice_bucket("x", "salt") == slice_bucket("x", "salt")
    assert 0 <= slice_bucket("x", "salt") < 1


def _sid(arm: str, cfg: CanaryConfig) -> str:
    for s in _ids(1000):
        if in_slice(s, cfg.fraction, cfg.salt) == (arm == "candidate"):
            return s
    raise AssertionError("no session found")


CFG = CanaryConfig(fraction=0.2, salt="t", timeout_s=0.2, baseline_policy="base-v1", candidate_policy="cand-v2")


def _router(candidate, validate=None):
    return CanaryRouter(baseline=lambda x: f"base:{x}", candidate=candidate, config=CFG, validate=validate)


def test_candidate_arm_serves_candidate_and_baseline_arm_never_calls_it():
    calls = []

    def cand(x):
        calls.append(x)
        return f"cand:{x}"

    with _router(cand) as r:
        res = r.call(_sid("candidate", CFG), "q")
        assert (res.output, res.served_by, res.policy, res.fallback) == ("cand:q", "candidate", "cand-v2", None)
        res = r.call(_sid("baseline", CFG), "q")
        assert (res.output, res.served_by, res.policy) == ("base:q", "baseline", "base-v1")
    assert calls == ["q"]


def _boom(x):
    raise RuntimeError("model server down")


def _slow_factory(release: threading.Event):
    def slow(x):
        release.wait(5)
        return f"late:{x}"
    return slow


@pytest.mark.parametrize("case", ["exception", "timeout", "invalid", "validator_raises", "none"])
def test_falls_back_to_baseline(case):
    release = threading.Event()
    cand, validate, kind = {
        "exception": (_boom, None, "RuntimeError"),
        "timeout": (_slow_factory(release), None, "timeout"),
        "invalid": (lambda x: "garbage", lambda out: out.startswith("cand") or "not a plan", "invalid_output"),
        "validator_raises": (lambda x: "cand", lambda out: 1 / 0, "invalid_output"),
        "none": (lambda x: None, None, "invalid_output"),
    }[case]
    with _router(cand, validate) as r:
        res = r.call(_sid("candidate", CFG), "q")
        release.set()
    assert res.output == "base:q" and res.served_by == "baseline" and res.fallback == kind
    assert res.arm == "candidate" and res.policy == "base-v1"
    assert r.stats["fallbacks"] == 1


def test_baseline_errors_propagate():
    r = CanaryRouter(baseline=_boom, candidate=lambda x: x, config=CFG)
    with pytest.raises(RuntimeError):
        r.call(_sid("baseline", CFG), "q")
    r.close()


def test_routing_and_fallbacks_are_recorded_as_valid_events(tmp_path):
    ids = {}
    for arm, cand in (("candidate", _boom), ("baseline", _boom), ("ok", lambda x: "cand")):
        sid = _sid("baseline" if arm == "baseline" else "candidate", CFG)
        with _router(cand) as router, Recorder(tmp_path, goal="g", model_stack=MODEL_STACK,
                                               runtime_config={"max_steps": 2}, run_id=f"{arm}-run",
                                               source={"kind": "runtime"}, strict=True) as run:
            router.call(sid, "q", recorder=run)
            run.emit("episode_end", role="orchestrator", payload={"success": True})
        ids[arm] = run.run_id
    rep = validate_root(tmp_path)
    assert rep.passed, rep.problems

    def events(run_id):
        return [ln.obj for ln in iter_lines(tmp_path / run_id / "events.jsonl")]

    def session(run_id):
        return orjson.loads((tmp_path / run_id / "session.json").read_bytes())

    ev = events(ids["candidate"])
    assert [e["event_type"] for e in ev] == ["orchestrator_transition", "episode_error",
                                             "orchestrator_transition", "episode_end"]
    assert ev[0]["payload"]["to_state"] == "candidate" and ev[0]["labels"]["canary"]["arm"] == "candidate"
    assert ev[1]["payload"]["kind"] == "RuntimeError" and ev[1]["labels"]["canary"]["fallback"] == "RuntimeError"
    assert ev[2]["payload"] == {"from_state": "candidate", "to_state": "baseline", "reason": "fallback: RuntimeError"}
    assert session(ids["candidate"])["labels"]["canary"] == {
        "arm": "candidate", "policy": "cand-v2", "fallbacks": 1, "fallback_kinds": ["RuntimeError"]}

    ev = events(ids["baseline"])
    assert [e["event_type"] for e in ev] == ["orchestrator_transition", "episode_end"]
    assert ev[0]["payload"]["to_state"] == "baseline"
    assert session(ids["baseline"])["labels"]["canary"]["policy"] == "base-v1"
    assert session(ids["ok"])["labels"]["canary"]["fallbacks"] == 0


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="fraction"):
        CanaryRouter(baseline=str, candidate=str, config=CanaryConfig(fraction=1.5))


CANARY_YAML = Path(__file__).resolve().parents[2] / "configs/ops/canary.yaml"


def test_fraction_above_max_fraction_is_refused():
    msg = ("canary.fraction=0.5: above canary.max_fraction=0.2 (the canary is a small traffic slice); "
           "lower canary.fraction, or raise canary.max_fraction deliberately")
    assert CanaryConfig(fraction=0.5).problems() == [msg]
    assert CanaryConfig(fraction=0.2).problems() == []
    with pytest.raises(ConfigError) as exc:
        load_config(OpsConfig, CANARY_YAML, ["canary.fraction=0.5"])
    assert msg in str(exc.value)
    with pytest.raises(ValueError, match="above canary.max_fraction=0.2"):
        CanaryRouter(baseline=str, candidate=str, config=CanaryConfig(fraction=0.25))
    # a deliberate wider slice: raise the limit with it
    assert load_config(OpsConfig, CANARY_YAML, ["canary.fraction=0.5", "canary.max_fraction=0.5"]).canary.fraction == 0.5
    assert "canary.max_fraction=0.0: must be in (0, 1]" in CanaryConfig(fraction=0.0, max_fraction=0.0).problems()[0]


def test_router_never_routes_more_than_the_slice():
    cfg = CanaryConfig(fraction=0.2, salt="cap")
    ids = _ids(4000)
    with CanaryRouter(baseline=lambda: "b", candidate=lambda: "c", config=cfg) as r:
        arms = [r.call(s).arm for s in ids]
        share = arms.count("candidate") / len(ids)
        assert 0.18 < share <= 0.22 and r.stats["candidate"] == arms.count("candidate")
        # editing the live config past the limit does not widen the slice
        r.config.fraction = 1.0
        assert [r.call(s).arm for s in ids] == arms


@pytest.mark.parametrize("baseline, candidate, says", [
    ("m-v1", "m-v1", "canary.candidate_policy=m-v1: the same id as canary.baseline_policy"),
    ("m-v1", " ", "canary.candidate_policy=' ': must name the policy"),
    ("", "m-v2", "canary.baseline_policy='': must name the policy"),
])
def test_policy_ids_that_cannot_tell_the_arms_apart_are_refused(baseline, candidate, says):
    # one id for both arms was found only when promote refused the gate report ("already the active policy")
    # after the whole canary period; an empty id labels sessions with no policy
    cfg = CanaryConfig(baseline_policy=baseline, candidate_policy=candidate)
    assert [p for p in cfg.problems() if p.startswith(says)], cfg.problems()
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_config(OpsConfig, CANARY_YAML, [f"canary.baseline_policy={baseline!r}", f"canary.candidate_policy={candidate!r}"])
    with pytest.raises(ValueError, match="canary"):
        CanaryRouter(baseline=str, candidate=str, config=cfg)
