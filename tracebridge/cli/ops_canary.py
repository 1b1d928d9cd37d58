"""``tracebridge ops canary-status``: which arm sessions get (the canary slice, or the rollout state of the
promotion history when it sends every session to one arm, and why), and how the slice behaved in a trace root."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from tracebridge.cli.app import fail, print_json
from tracebridge.cli.ops import CANARY_CONFIG, JsonOpt, Overrides, _ops_config, _state, ops_app


@ops_app.command("canary-status")
def canary_status(
    traces: Annotated[Path | None, typer.Option(help="Trace root: sessions per arm and fallbacks.")] = None,
    session: Annotated[list[str] | None, typer.Option(help="Session id(s): which arm each one gets.")] = None,
    config: Annotated[Path | None, typer.Option(help="Ops config with the canary block.")] = CANARY_CONFIG,
    state: Annotated[Path | None, typer.Option(help="Policy state folder (overrides promotion.state_dir).")] = None,
    overrides: Overrides = None,
    json_out: JsonOpt = False,
) -> None:
    """Which arm sessions get, and how the canary slice behaved in a trace root (fallbacks by kind). ``rollout``:
    the promotion state the router follows (``tracebridge.ops.rollout``): ``arm`` null while the slice routes, else
    the arm every session goes to and ``why`` (a rolled-back candidate: what to do to canary a fixed build). Exit 1
    when the promotion state (``active.json``, or the history) cannot be read: ``rollout.error`` says why."""
    from tracebridge.ops.canary import in_slice, slice_bucket
    from tracebridge.ops.rollout import ActivePolicyWatch
    from tracebridge.ops.samples import collect_from_traces

    ops = _ops_config(config, overrides)
    cfg = ops.canary
    st = _state(config, state if state is not None else Path(ops.promotion.state_dir))
    watch = ActivePolicyWatch(st)
    forced, why = watch.decide(cfg.baseline_policy, cfg.candidate_policy)
    out: dict[str, Any] = {"fraction": cfg.fraction, "salt": cfg.salt, "sessions": {},
                           "rollout": {"state_dir": str(st.root), "arm": forced, "why": why}}
    unreadable = None  # the state cannot be read: the router's fallback is shown, and the command fails (exit 1)
    if watch.error is not None:
        out["rollout"]["error"] = watch.error
        unreadable = (f"promotion state cannot be read: {watch.error}; the router sends every session to the "
                      f"baseline until it can (check it: tracebridge ops policy --state {st.root})")
    for sid in session or []:
        sliced = "candidate" if in_slice(sid, cfg.fraction, cfg.salt) else "baseline"
        out["sessions"][sid] = {"arm": forced or sliced, "slice_arm": sliced,
                                "bucket": round(slice_bucket(sid, cfg.salt), 6)}
    if traces is not None:
        if not traces.is_dir():
            fail(f"--traces {traces}: no such trace root (a folder of runs)")
        ss = collect_from_traces(traces)
        cand = ss.by_arm["candidate"]
        fb = sum(1 for s in cand if s.fallbacks)
        n = len(cand) + len(ss.by_arm["baseline"])
        kinds = Counter(k for s in cand for k in s.fallback_kinds)  # sessions per kind (timeout, invalid_output, ...)
        out["traces"] = {**ss.counts(), "candidate_share": round(len(cand) / n, 4) if n else None,
                         "sessions_with_fallback": fb, "fallback_rate": round(fb / len(cand), 4) if cand else None,
                         "fallbacks_by_kind": dict(kinds.most_common())}
    if json_out:
        if unreadable:
            fail(unreadable, 1, **out)
        print_json(out)
        return
    if forced is not None:
        typer.echo(f"canary slice closed: {why}")
    else:  # said too: with no --session or --traces this line is the whole answer (it printed nothing)
        typer.echo(f"canary slice open: {why} (fraction {cfg.fraction}, state {st.root})")
    for sid, v in out["sessions"].items():
        typer.echo(f"{sid}: {v['arm']} (bucket {v['bucket']:.4f}, fraction {cfg.fraction})")
    if "traces" in out:
        t = out["traces"]
        shown = {k: "n/a" if t[k] is None else t[k] for k in ("candidate_share", "fallback_rate")}  # of no sessions
        typer.echo(f"{t['candidate']} candidate / {t['baseline']} baseline sessions (share {shown['candidate_share']}, "
                   f"configured {cfg.fraction}); fallbacks in {t['sessions_with_fallback']} sessions "
                   f"(rate {shown['fallback_rate']}"
                   + "".join(f"; {k} {v}" for k, v in t["fallbacks_by_kind"].items())
                   + f"); {t['skipped']} runs without a canary label")
    if unreadable:
        fail(unreadable, 1)
