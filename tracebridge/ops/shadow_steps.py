"""The steps of the daily shadow cycle and their dependencies (``STEPS``).

Steps that belong to another package call that package's documented command with ``--json`` in
a child process (``tracebridge import openclaw``, ``export``, ``feedback audit``, ``train``,
``smoke runtime-hook``): the cycle survives a crash there, each step's output is logged to
``logs/<step>.log`` in the bundle, and the cycle depends on the commands' contracts only.
Validation, the replay set, consumer checks and the chunk policy run in process.

    import ─► validate ─► export ─► consumers
                 │           └────► chunk_policy
                 └────► replay ───► optimize
    runtime_hook (independent)      feedback (independent)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tracebridge.capture.reader import iter_lines
from tracebridge.ops import replay as rp
from tracebridge.ops.artifacts import sha256_file
from tracebridge.ops.cycle import LOCK, Ctx, Step, StepFailed
from tracebridge.ops.groups import CommandCancelled, run_in_group
from tracebridge.ops.locks import note_child

log = logging.getLogger(__name__)


def run_cli(ctx: Ctx, step: str, args: list[str], timeout_s: float = 3 * 3600,
            ok_codes: tuple[int, ...] = (0,)) -> dict[str, Any]:
    """Run ``tracebridge ARGS`` (which must print one JSON document); log it; return the JSON.

    Args:
        ok_codes: exit codes after which the JSON is returned (a check command exits 1 with a
            complete summary; the step decides what that means). Never 2: a usage or config error
            (README "Exit codes") means the command did no work, so the step fails with its message.

    Raises:
        StepFailed: another exit code, a timeout, or no JSON on stdout (with the output's tail).
    """
    logs = ctx.bundle / "logs"
    logs.mkdir(exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "TOKENIZERS_PARALLELISM": "false", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    try:
        res = _run_child([*ctx.cli, *args], env, timeout_s, ctx)
    except subprocess.TimeoutExpired as exc:
        raise StepFailed(f"tracebridge {' '.join(args[:2])}: timed out after {timeout_s}s") from exc
    (logs / f"{step}.log").write_text(f"$ tracebridge {' '.join(args)}\n# exit {res.returncode}\n"
                                      f"# stdout\n{res.stdout}\n# stderr\n{res.stderr}")
    try:
        doc = json.loads(res.stdout) if res.stdout.strip() else None
    except json.JSONDecodeError:
        doc = None
    if res.returncode not in ok_codes or (res.returncode and not isinstance(doc, dict)):
        tail = _tail(res.stderr) or _tail(res.stdout) or "no output"
        raise StepFailed(f"tracebridge {' '.join(args[:2])} exited {res.returncode}: {tail} (logs/{step}.log)",
                         {"json": doc} if doc is not None else {})
    if not isinstance(doc, dict):
        raise StepFailed(f"tracebridge {' '.join(args[:2])} printed no JSON object (see logs/{step}.log)")
    return doc


def _run_child(argv: list[str], env: dict[str, str], timeout_s: float, ctx: Ctx,
               grace_s: float = 10.0) -> subprocess.CompletedProcess[str]:
    """Run a step's command with ``run_in_group``, so no step outlives its cycle and its lock.

    Raises:
        subprocess.TimeoutExpired: it ran past ``timeout_s``.
        StepFailed: the cycle was interrupted (``ctx.cancel``).
    """
    try:
        return run_in_group(argv, env, timeout_s, ctx.cancel, grace_s,  # noted: a SIGKILLed cycle's next stops it
                            on_start=lambda pid, cmd: note_child(ctx.work / LOCK, pid, cmd))
    except CommandCancelled as exc:
        raise StepFailed(f"tracebridge {' '.join(argv[len(ctx.cli):][:2])}: stopped, the cycle was interrupted") from exc


def _tail(text: str, n: int = 400) -> str:
    """The last meaningful lines of a command's output, without rich's box drawing or usage lines."""
    lines = [ln.strip(" │╭╮╰╯─┃━") for ln in text.splitlines()]
    keep = [ln for ln in lines if ln and not ln.startswith(("Usage:", "Try '"))]
    return " ".join(keep)[-n:]


def _counts(doc: dict[str, Any], read_keys: tuple[str, ...], ok_keys: tuple[str, ...]) -> dict[str, int] | None:
    """read / accepted / quarantined from a command's JSON summary (flat or under ``counts``)."""
    src = {**doc, **(doc.get("counts") or {})}
    q = src.get("quarantined")
    q = len(q) if isinstance(q, list) else q
    read = next((src[k] for k in read_keys if isinstance(src.get(k), int)), None)
    ok = next((src[k] for k in ok_keys if isinstance(src.get(k), int)), None)
    if read is None or ok is None or not isinstance(q, int):
        return None
    return {"read": read, "accepted": ok, "quarantined": q}


# --------------------------------------------------------------------------- steps


def _run_count(traces: Path) -> int:
    """Run folders in a trace root; the importers' state (``.import/``) is no run."""
    return sum(1 for p in traces.iterdir() if p.is_dir() and not p.name.startswith("."))


def step_import(ctx: Ctx) -> dict[str, Any]:
    """Import new OpenClaw sessions into the cycle's own trace root (incremental)."""
    ctx.traces.mkdir(parents=True, exist_ok=True)
    before = _run_count(ctx.traces)
    if not ctx.shadow.sources:
        return {"note": "no sources configured: the runs already in the trace root are used",
                "inputs": {"runs_before": before}}
    srcs = [os.path.expanduser(s) for s in ctx.shadow.sources]
    doc = run_cli(ctx, "import", ["import", "openclaw", *srcs, "--out", str(ctx.traces), "--json"])
    counts = _counts(doc, ("read", "lines_read", "lines"), ("accepted", "imported", "events_written"))
    after = _run_count(ctx.traces)
    return {"counts": counts, "summary": doc, "inputs": {"runs_before": before, "runs_after": after}}


def audited_day(now: dt.datetime, harvest_log: str | os.PathLike[str] | None = None) \
        -> tuple[dt.date, bool, list[str]]:
    """The UTC day a cycle at ``now`` audits, whether it is the host's first harvest day, and the
    harvest log entries dated after that day that were ignored (``file:line: ...``).

    The previous day, the last complete one: the cycle runs at 02:15 UTC, so its own day holds
    about two hours of reactions, and a harvest on it is the one the cycle has just run. On a
    host's first cycle (no harvest logged before today) there is no previous day to audit: the
    cycle audits its own day, whose harvest it has just run, instead of failing on a day before
    anything was installed. An entry dated after today (written while the clock was ahead) is no
    harvest of this host's past: it is ignored, or it would make any day look like the first.
    """
    today = now.astimezone(dt.UTC).date()
    first, ignored = _first_logged_day(harvest_log, today) if harvest_log is not None else (None, [])
    if first is not None and first >= today:
        return today, True, ignored
    return today - dt.timedelta(days=1), False, ignored


def _first_logged_day(harvest_log: str | os.PathLike[str], today: dt.date) -> tuple[dt.date | None, list[str]]:
    """The UTC day of the first harvest in the (append-only) harvest log that is not dated after
    ``today`` (None when it has none), and each entry before it that is, as ``file:line: why``."""
    from tracebridge.feedback.ledger import parse_time

    path, ignored = Path(harvest_log), []
    if not path.is_file():
        return None, ignored
    for ln in iter_lines(path):
        t = parse_time(ln.obj.get("time")) if isinstance(ln.obj, dict) else None
        day = t.astimezone(dt.UTC).date() if t is not None else None
        if day is not None and day > today:
            ignored.append(f"{path}:{ln.lineno}:time: {ln.obj.get('time')} is after today ({today}), ignored")
        elif day is not None:
            return day, ignored
    return None, ignored


def _bot_overrides(bot_id: str, legacy_bot_id: str) -> list[str]:
    """``feedback`` key=value overrides naming the bot a harvest is for and the bot of rows of none."""
    return [f"{k}={v}" for k, v in (("bot_id", bot_id), ("legacy_bot_id", legacy_bot_id)) if v]


def _harvests(ctx: Ctx, paths: list[str]) -> dict[str, Any] | None:
    """Harvest `sources` and `feedback_updates` (as ``feedback_bot_id``; `sources`' reactions by OpenClaw
    account per ``feedback_openclaw_accounts``), then each of ``feedback_bots`` from its own dumps under its
    own id; the counts summed, and per bot. None = nothing to harvest. A source holding no transcript yet (a
    host before its first chat) is left out and named (``empty_sources``): ``feedback harvest`` refuses it (exit 2,
    it would count as a harvest that ran), and it is no reason to fail the cycle."""
    from tracebridge.feedback.harvest_openclaw import holding_nothing

    sh, legacy = ctx.shadow, ctx.shadow.feedback_legacy_bot_id
    sources = [os.path.expanduser(s) for s in sh.sources]
    empty = holding_nothing(sources)
    sources = [s for s in sources if s not in empty]
    srcs = [a for s in sources for a in ("--openclaw", s)] + \
        [a for u in sh.feedback_updates for a in ("--updates", os.path.expanduser(u))]
    accounts = [f"openclaw_accounts.{a}={b}" for a, b in sh.feedback_openclaw_accounts.items()] if sources else []
    runs = [(sh.feedback_bot_id, srcs + accounts)] if srcs else []
    runs += [(b.bot_id, [a for u in b.updates for a in ("--updates", os.path.expanduser(u))]) for b in sh.feedback_bots]
    out: dict[str, Any] | None = None
    for i, (bot, args) in enumerate(runs):
        step = "feedback_harvest" + (f"_{bot}" if i else "")
        doc = run_cli(ctx, step, ["feedback", "harvest", *args, *paths, *_bot_overrides(bot, legacy), "--json"])
        out = out or {"added": 0, "duplicates": 0, "quarantined": 0, "bots": {}}
        for k in ("added", "duplicates", "quarantined"):
            out[k] += doc.get(k) or 0
        out["bots"].update(doc.get("bots") or {})
    if empty:
        log.warning("feedback harvest: %s hold no OpenClaw transcript yet; not harvested", ", ".join(empty))
        out = {**(out or {"added": 0, "duplicates": 0, "quarantined": 0, "bots": {}}), "empty_sources": empty}
    return out


def step_feedback(ctx: Ctx) -> dict[str, Any]:
    """Harvest reactions (OpenClaw system events, Bot API dumps; one harvest per bot, ``_harvests``), then
    audit the previous UTC day (``audited_day``; on a host's first harvest day, that day), as
    ``tracebridge feedback audit`` does by default; keep the audit."""
    sh = ctx.shadow
    # the harvest's quarantine (which the audit reads) beside the cycle's ledger, not relative to the working folder
    paths = ["--ledger", sh.feedback_ledger, "--mapping", sh.feedback_mapping, f"harvest_log={sh.feedback_harvest_log}",
             f"quarantine={Path(sh.feedback_ledger).parent / 'quarantine.jsonl'}"]
    harvest = _harvests(ctx, paths)
    audited, first, ignored = audited_day(ctx.now, sh.feedback_harvest_log)
    day = audited.isoformat()
    folder = ctx.bundle / "feedback"
    doc = run_cli(ctx, "feedback", ["feedback", "audit", "--day", day, *paths, "--registry", sh.chunk_registry,
                                    "--out", str(folder), *_bot_overrides("", sh.feedback_legacy_bot_id), "--json"],
                  ok_codes=(0, 1))
    audit = Path(doc.get("files", {}).get("json") or folder / f"{day}.json")
    if not audit.is_file():
        raise StepFailed(f"feedback audit wrote no {audit}")
    ledger = Path(sh.feedback_ledger)
    inputs = {"ledger": sh.feedback_ledger, "ledger_sha256": sha256_file(ledger) if ledger.is_file() else None}
    ran = doc.get("harvest_ran")
    fb = {"audited_day": day, "first_harvest_day": first, "harvest_ran": ran is True, "evidence": doc.get("harvest_evidence"),
          "harvested": harvest,
          "audit_file": audit.relative_to(ctx.bundle).as_posix(), "audit_sha256": sha256_file(audit)}
    if ignored:  # dated in the future: not taken as the host's first harvest day
        fb["ignored_harvest_entries"] = ignored[:20] + ([f"(+{len(ignored) - 20} more)"] if len(ignored) > 20 else [])
    if ran is not True:
        fb["reason"] = (f"audit of the UTC day {day} says harvest_ran={ran!r}: no harvest ran that day "
                        "(a missed cycle, or a harvest with no source configured)")
        raise StepFailed(fb["reason"], {"feedback": fb, "inputs": inputs})
    return {"feedback": fb, "inputs": inputs}


def step_validate(ctx: Ctx) -> dict[str, Any]:
    """Schema, drift and lineage of every run in the cycle's trace root."""
    from tracebridge.schema.validate import validate_root

    rep = validate_root(ctx.traces, max_problems=200).to_dict()
    (ctx.bundle / "validate.json").write_text(json.dumps(rep, indent=2, sort_keys=True, default=str))
    out = {k: rep[k] for k in ("runs_total", "runs_complete", "runs_incomplete", "events_total", "schema_valid_pct",
                               "lineage_valid_pct", "incomplete_pct", "torn_tails", "passed", "failures")}
    if not rep["passed"]:  # say where, not only the rate: the first problems (all of them: validate.json)
        where = "; ".join(str(p) for p in rep.get("problems", [])[:3])
        raise StepFailed("validation below thresholds: " + "; ".join(rep["failures"])
                         + (f"; first problems: {where} (every one in validate.json)" if where else ""), out)
    return out


def export_bundle(ctx: Ctx, step: str, traces: Path, out: Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """``tracebridge export`` into ``out``; return the bundle folder, id, counts and summary."""
    args = ["export", str(traces), *ctx.shadow.export_overrides, *(overrides or []), "--out", str(out), "--json"]
    if ctx.shadow.export_config:
        args += ["--config", ctx.shadow.export_config]
    if ctx.shadow.export_cache:
        args += ["--cache", str(ctx.work / "export-cache" / step)]
    doc = run_cli(ctx, step, args)
    bundle = next((Path(doc[k]) for k in ("bundle_dir", "bundle", "path", "out") if isinstance(doc.get(k), str)
                   and (Path(doc[k]) / "manifest.json").is_file()), None)
    if bundle is None:  # the newest folder with a manifest
        cands = sorted((p for p in out.iterdir() if (p / "manifest.json").is_file()), key=lambda p: p.stat().st_mtime)
        if not cands:
            raise StepFailed(f"{out}: export wrote no bundle with a manifest.json", {"summary": doc})
        bundle = cands[-1]
    man = json.loads((bundle / "manifest.json").read_text())
    return {"bundle_dir": str(bundle), "bundle_id": man.get("bundle_id") or doc.get("bundle_id"),
            "counts": _counts(doc, ("read", "runs_read", "runs"), ("accepted", "runs_accepted", "exported")),
            "summary": doc}


def feedback_overrides(ledger: str, mapping: str, registry: str, legacy_bot_id: str = "") -> list[str]:
    """Export overrides that join the reaction labels (chunk policy included), when a ledger exists;
    ``legacy_bot_id``: the bot of the rows that name none, when several bots share the files.

    Used by the shadow cycle's export and by the weekly retrain's (``tracebridge.ops.weekly``).
    """
    if not Path(ledger).is_file():
        return []
    return [f"feedback.ledger={ledger}", f"feedback.mapping={mapping}", f"feedback.registry={registry}",
            *(f"feedback.{o}" for o in _bot_overrides("", legacy_bot_id))]


def step_export(ctx: Ctx) -> dict[str, Any]:
    """Curate and export the cycle's runs with feedback labels joined; keep manifest, report, quarantine."""
    sh = ctx.shadow
    fb = feedback_overrides(sh.feedback_ledger, sh.feedback_mapping, sh.chunk_registry, sh.feedback_legacy_bot_id)
    out = export_bundle(ctx, "export", ctx.traces, ctx.work / "bundles", fb)
    src = Path(out["bundle_dir"])
    dst = ctx.bundle / "export"
    dst.mkdir(exist_ok=True)
    for p in sorted(src.iterdir()):
        if p.is_file() and (p.name in ("manifest.json", "quarantine.jsonl") or p.name.startswith("report")):
            shutil.copy2(p, dst / p.name)
    return {**out, "feedback_labels": bool(fb)}


def step_replay(ctx: Ctx) -> dict[str, Any]:
    """Freeze the fixed replay set once, verify it every day, export it (same bundle id daily).

    The replay export joins no live feedback: reactions arrive every day, and a fixed benchmark
    must give the same bundle on every day.
    """
    sh = ctx.shadow
    man = rp.load_replay_manifest(ctx.work)
    created = man is None
    if man is None:
        man = rp.freeze_replay_set(ctx.traces, ctx.work, sh.replay.size, sh.replay.salt)
    problems = rp.verify_replay_set(ctx.work, man)
    if problems:
        raise StepFailed("replay set changed: " + "; ".join(problems[:5]), {"problems": problems})
    out = export_bundle(ctx, "replay", rp.replay_dir(ctx.work) / "traces", rp.replay_dir(ctx.work) / "bundles")
    if man.get("first_bundle_id") is None:
        man["first_bundle_id"] = out["bundle_id"]
        rp.write_replay_manifest(ctx.work, man)
    stable = out["bundle_id"] == man["first_bundle_id"]
    dst = ctx.bundle / "replay"
    dst.mkdir(exist_ok=True)
    shutil.copy2(rp.replay_dir(ctx.work) / rp.REPLAY_MANIFEST, dst / rp.REPLAY_MANIFEST)
    short = rp.shortfall(man, ctx.work)
    return {**out, "runs": len(man["runs"]), "created": created, "stable": stable,
            "first_bundle_id": man["first_bundle_id"], **({"note": short} if short else {}),
            "inputs": {"replay_manifest_sha256": sha256_file(dst / rp.REPLAY_MANIFEST)}}


def step_consumers(ctx: Ctx) -> dict[str, Any]:
    """Views parse, TRL formatting works, Agent Lightning consumes our export."""
    from tracebridge.ops.consumers import check_bundle

    res = check_bundle(Path(ctx.outputs["export"]["bundle_dir"]))
    (ctx.bundle / "consumers.json").write_text(json.dumps(res, indent=2, sort_keys=True))
    bad = [k for k, v in res.items() if not v["ok"]]
    if bad:
        raise StepFailed("consumer checks failed: " + "; ".join(f"{k}: {res[k]['problems'][:2]}" for k in bad), res)
    return res


def step_optimize(ctx: Ctx) -> dict[str, Any]:
    """Baseline vs optimized on the replay bundle (tiny local run or a cluster sweep)."""
    from tracebridge.ops.optimize import optimize_smoke

    return optimize_smoke(ctx, run_cli)


def step_runtime_hook(ctx: Ctx) -> dict[str, Any]:
    """A tiny agent run end to end through the Agent Lightning runtime hook, validated."""
    doc = run_cli(ctx, "runtime_hook", ["smoke", "runtime-hook", "--json"], timeout_s=900)
    if doc.get("passed") is False or doc.get("ok") is False:
        raise StepFailed(f"runtime-hook smoke reported failure: {str(doc)[:400]}", {"summary": doc})
    return {"summary": doc}


def step_chunk_policy(ctx: Ctx) -> dict[str, Any]:
    """The chunked-message label policy is documented and applied in the exported training rows."""
    from tracebridge.ops.chunks import check_chunk_policy

    sh = ctx.shadow
    res = check_chunk_policy(Path(sh.chunk_policy_doc), Path(sh.chunk_registry), Path(ctx.outputs["export"]["bundle_dir"]))
    if res["doc_sha256"]:
        (ctx.bundle / "docs").mkdir(exist_ok=True)
        shutil.copy2(sh.chunk_policy_doc, ctx.bundle / "docs" / Path(sh.chunk_policy_doc).name)
    if not res["doc_sha256"]:
        raise StepFailed(f"{sh.chunk_policy_doc}: chunk label policy not documented", {"chunk_policy": res})
    if res["violations"]:
        raise StepFailed(f"{res['violations']} chunk label violations: {res['violation_examples'][:2]}",
                         {"chunk_policy": res})
    return {"chunk_policy": res}


STEPS: list[Step] = [  # table order = start order when slots free up (runtime_hook first: long, independent)
    Step("import", step_import, (), "OpenClaw sessions → the cycle's trace root"),
    Step("runtime_hook", step_runtime_hook, (), "Agent Lightning runtime-hook smoke"),
    Step("feedback", step_feedback, (), "reaction harvest + audit of the previous UTC day"),
    Step("validate", step_validate, ("import",), "schema, drift, lineage"),
    Step("export", step_export, ("validate",), "curate + export bundle (feedback labels joined)"),
    Step("replay", step_replay, ("validate",), "fixed replay set + its bundle"),
    Step("consumers", step_consumers, ("export",), "datasets, TRL, Agent Lightning consume the views"),
    Step("optimize", step_optimize, ("replay",), "baseline vs optimized on the replay set"),
    Step("chunk_policy", step_chunk_policy, ("export",), "chunk label policy documented and applied"),
]
