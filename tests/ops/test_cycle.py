"""The step-table runner: dependencies, failure isolation, config skips, the lock, the manifest."""

from __future__ import annotations

import datetime as dt

import pytest
from filelock import FileLock

from tracebridge.ops.artifacts import list_cycles, verify_bundle
from tracebridge.ops.config import OpsConfig
from tracebridge.ops.cycle import CycleLocked, Step, StepFailed, run_cycle

NOW = dt.datetime(2026, 3, 1, 2, 15, tzinfo=dt.UTC)


def _cfg(tmp_path, **shadow):
    cfg = OpsConfig(artifacts_dir=str(tmp_path / "artifacts"))
    cfg.shadow.work_dir = str(tmp_path / "work")
    cfg.weekly.bundles_dir, cfg.phase2.out_dir = str(tmp_path / "wb"), str(tmp_path / "p2")  # retention reads them
    for k, v in shadow.items():
        setattr(cfg.shadow, k, v)
    return cfg


def _ok(name, out=None):
    def fn(ctx):
        (ctx.bundle / f"{name}.txt").write_text(name)
        return out or {"done": name}
    return fn


def _boom(ctx):
    raise OSError("disk full")


def _check_fails(ctx):
    raise StepFailed("2 views do not parse", {"problems": ["a", "b"]})


STEPS = [
    Step("import", _ok("import")),
    Step("validate", _boom, ("import",)),
    Step("export", _ok("export"), ("validate",)),
    Step("consumers", _ok("consumers"), ("export",)),
    Step("runtime_hook", _ok("runtime_hook")),
    Step("feedback", _check_fails),
    Step("optimize", _ok("optimize", {"uplift": {"uplift": 0.1}, "note": "measured on 2 runs"}), ("import",)),
]


def test_failed_step_skips_dependents_and_independent_steps_still_run(tmp_path):
    man = run_cycle(_cfg(tmp_path), STEPS, cli=[], now=NOW)
    st = {n: (r["status"], r["reason"]) for n, r in man["steps"].items()}
    assert st == {
        "import": ("ok", ""), "validate": ("failed", "OSError: disk full"),
        "export": ("skipped", "needs validate"), "consumers": ("skipped", "needs export"),
        "runtime_hook": ("ok", ""), "feedback": ("failed", "2 views do not parse"),
        "optimize": ("ok", "measured on 2 runs"),  # a passed step's note is its reason
    }
    assert "traceback" in man["steps"]["validate"] and man["steps"]["feedback"]["outputs"]["problems"] == ["a", "b"]
    assert man["status"] == "failed" and man["uplift"] == {"uplift": 0.1}
    bundle = tmp_path / "artifacts" / "20260301T021500Z"
    assert man["path"] == str(bundle) and verify_bundle(bundle) == []
    assert sorted(f["path"] for f in __import__("json").loads((bundle / "manifest.json").read_text())["files"]) == [
        "import.txt", "optimize.txt", "runtime_hook.txt"]


def test_config_skips_and_a_second_cycle_gets_its_own_folder(tmp_path):
    cfg = _cfg(tmp_path, skip=["feedback", "validate"], runtime_hook=False)
    cfg.shadow.optimize.mode = "off"
    man = run_cycle(cfg, STEPS, cli=[], now=NOW)
    st = {n: (r["status"], r["reason"]) for n, r in man["steps"].items()}
    assert st["feedback"] == ("skipped", "skipped by config") and st["optimize"] == ("skipped", "skipped by config")
    assert st["runtime_hook"] == ("skipped", "skipped by config") and st["export"] == ("skipped", "needs validate")
    assert man["status"] == "ok"  # the operator turned those steps off: nothing failed (the review names them)
    run_cycle(cfg, STEPS, cli=[], now=NOW)
    assert [p.name for _, p in list_cycles(tmp_path / "artifacts")] == ["20260301T021500Z", "20260301T021500Z-1"]


def test_optimize_mode_off_survives_yaml_reading_off_as_false(tmp_path):
    # shadow.yaml's own override line: YAML 1.1 reads a bare `off` as false, which became "False"
    from tracebridge.config import load_config

    (tmp_path / "ops.yaml").write_text("shadow:\n  optimize:\n    mode: off\n")
    for path, ov in [(None, ["shadow.optimize.mode=off"]), (tmp_path / "ops.yaml", [])]:
        assert load_config(OpsConfig, path, ov).shadow.optimize.mode == "off"


def test_overlapping_cycles_are_refused(tmp_path):
    cfg = _cfg(tmp_path)
    (tmp_path / "work").mkdir()
    with (FileLock(str(tmp_path / "work" / ".shadow-cycle.lock")),
          pytest.raises(CycleLocked, match="another shadow cycle is running")):
        run_cycle(cfg, STEPS, cli=[], now=NOW)
    assert not (tmp_path / "artifacts").exists()


def test_a_step_cannot_need_a_later_step(tmp_path):
    with pytest.raises(ValueError, match="needs"):
        run_cycle(_cfg(tmp_path), [Step("a", _ok("a"), ("b",)), Step("b", _ok("b"))], cli=[], now=NOW)
    assert not (tmp_path / "artifacts").exists()


def test_independent_steps_run_in_parallel_and_dependents_wait(tmp_path):
    import threading

    barrier = threading.Barrier(2, timeout=10)
    order = []

    def meet(name):
        def fn(ctx):
            barrier.wait()  # only returns when both independent steps run at the same time
            order.append(name)
            return {"name": name}
        return fn

    def after(ctx):
        order.append("after")
        return {"saw": sorted(ctx.outputs)}

    steps = [Step("a", meet("a")), Step("b", meet("b")), Step("c", after, ("a", "b"))]
    cfg = _cfg(tmp_path, parallel_steps=2)
    man = run_cycle(cfg, steps, cli=[], now=NOW)
    assert man["status"] == "ok" and order[-1] == "after"
    assert man["steps"]["c"]["outputs"]["saw"] == ["a", "b"]
    assert list(man["steps"]) == ["a", "b", "c"]
