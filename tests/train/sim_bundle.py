"""A real simulator bundle for the training tests: simulator traces → view rows → bundle folder.

Uses ``tracebridge export`` when the export package provides it; until then a minimal converter
here renders the same TRL formats with the role I/O contract (``tracebridge.schema.roles``), a
goal-family split (files, sql → train; calc → validation; docs → test) and a manifest with file
hashes. Deterministic for a given collection config.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tracebridge.schema import roles

ROOT = Path(__file__).resolve().parents[2]
SPLIT = {"files": "train", "sql": "train", "calc": "validation", "docs": "test"}


def collect_traces(out: Path, overrides: list[str]) -> Path:
    from tracebridge.config import load_config
    from tracebridge.sim.collect import collect
    from tracebridge.sim.config import CollectConfig

    cfg = load_config(CollectConfig, ROOT / "configs/collect/default.yaml",
                      ["workers=1", "seeds.random=0", "checks.min_verdict_share=0", "checks.min_recovery_share=0",
                       *overrides])
    collect(cfg, str(out))
    return out


def _meta(ev: dict[str, Any], ids: list[str], family: str, labels: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": ev["run_id"], "event_ids": ids, "goal_family": family, "split": SPLIT[family],
            "source": "sim", "labels": labels}


def _worker_rows(events: list[dict[str, Any]], family: str) -> list[dict[str, Any]]:
    rows, cur, ids = [], None, []
    for ev in events:
        t, p = ev["event_type"], ev["payload"]
        if t == "worker_input":
            tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
                     for n in p.get("allowed_tools") or []]
            cur, ids = {"messages": roles.messages("worker", roles.worker_user_text(p)), "tools": tools}, [ev["event_id"]]
            failed = False
        elif cur is not None and t == "worker_tool_call":
            cur["messages"].append(roles.tool_call_message(p["call_id"], p["tool"], p.get("args") or {}))
            ids.append(ev["event_id"])
        elif cur is not None and t == "worker_tool_result":
            body = {"ok": p["ok"], "output": p.get("output")} if p["ok"] else {"ok": False, "error": p.get("error")}
            failed = failed or not p["ok"]
            cur["messages"].append({"role": "tool", "content": json.dumps(body, default=str)[:600]})
        elif cur is not None and t == "worker_output":
            cur["messages"].append({"role": "assistant", "content": json.dumps(p.get("result"), default=str)[:300]})
            cur["meta"] = _meta(ev, ids + [ev["event_id"]], family, {"recovery": failed and p.get("status") == "done"})
            rows.append(cur)
            cur = None
    return rows


def views_from_traces(traces: Path) -> dict[str, list[dict[str, Any]]]:
    views: dict[str, list[dict[str, Any]]] = {v: [] for v in ("planner_sft", "worker_sft", "verifier_sft",
                                                             "verifier_pref_pairs", "worker_recovery_cases")}
    for run in sorted(p for p in traces.iterdir() if (p / "session.json").is_file()):
        family = json.loads((run / "session.json").read_text())["goal"]["family"]
        events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if x.strip()]
        by_id = {e["event_id"]: e for e in events}
        for ev in events:
            parent = by_id.get(ev.get("parent_event_id") or "")
            if ev["event_type"] == "verifier_output" and parent:
                user = roles.verifier_user_text(parent["payload"])
                exp = (ev.get("labels") or {}).get("expected_verdict", ev["payload"]["verdict"])
                meta = _meta(ev, [parent["event_id"], ev["event_id"]], family, dict(ev.get("labels") or {}))
                views["verifier_sft"].append({"messages": roles.messages("verifier", user, roles.verifier_reply_text(
                    ev["payload"])), "meta": meta})
                wrong = ev["payload"]["verdict"] if ev["payload"]["verdict"] != exp else \
                    roles.VERDICTS[(roles.VERDICTS.index(exp) + 1) % 3]
                views["verifier_pref_pairs"].append({
                    "prompt": roles.messages("verifier", user),
                    "chosen": [{"role": "assistant", "content": roles.verifier_reply_text({"verdict": exp})}],
                    "rejected": [{"role": "assistant", "content": roles.verifier_reply_text({"verdict": wrong})}],
                    "meta": meta})
            elif ev["event_type"] == "planner_output" and parent:
                views["planner_sft"].append({"messages": roles.messages(
                    "planner", roles.planner_user_text(parent["payload"]), roles.planner_reply_text(ev["payload"])),
                    "meta": _meta(ev, [parent["event_id"], ev["event_id"]], family,
                                  {"tool_mask": parent["payload"].get("tool_mask") or []})})
        for row in _worker_rows(events, family):
            views["worker_recovery_cases" if row["meta"]["labels"]["recovery"] else "worker_sft"].append(row)
    return views


def write_bundle(views: dict[str, list[dict[str, Any]]], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name, rows in views.items():
        data = "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows).encode()
        (out / f"{name}.jsonl").write_bytes(data)
        files.append({"path": f"{name}.jsonl", "sha256": hashlib.sha256(data).hexdigest(), "rows": len(rows),
                      "bytes": len(data)})
    bundle_id = hashlib.sha256("".join(f["sha256"] for f in files).encode()).hexdigest()
    (out / "manifest.json").write_text(json.dumps({"bundle_id": bundle_id, "files": files}, indent=2))
    return out


def export_with_tracebridge(traces: Path, out: Path, overrides: list[str] | None = None) -> Path | None:
    """A bundle made by ``tracebridge export`` (with export config ``overrides``) when that command
    exists, else None."""
    from typer.testing import CliRunner

    import tracebridge.cli  # noqa: F401 - registers every command module
    from tracebridge.cli.app import app

    if not any(getattr(c, "name", None) == "export" or (c.callback and c.callback.__name__ == "export")
               for c in app.registered_commands):
        return None
    res = CliRunner().invoke(app, ["export", str(traces), "--out", str(out), *(overrides or [])])
    if res.exit_code != 0:
        raise RuntimeError(f"tracebridge export failed: {res.output[-2000:]}")
    manifests = sorted(out.rglob("manifest.json"))
    return manifests[0].parent if manifests else None


def shared_traces(tmp_path_factory: Any, overrides: list[str]) -> Path:
    """The traces of ``collect_traces(overrides)``, collected once per test session: the first caller collects
    under a lock in the session's temporary root (shared by the xdist workers of one run), the others wait
    for it and reuse them (before, ``sim_bundle`` and test_learning's ``goal_split_bundle`` each collected
    the same ten seeds). The runs' ids differ from a fresh collection's, nothing else."""
    import os

    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # basetemp is <session root>/popen-gwN
        base = base.parent
    shared = base / f"sim-traces-{hashlib.sha256(json.dumps(overrides).encode()).hexdigest()[:12]}"
    with FileLock(f"{shared}.lock"):
        if not (shared / "done").is_file():
            collect_traces(shared / "traces", overrides)
            (shared / "done").touch()
    return shared / "traces"


def make_sim_bundle(tmp: Path, overrides: list[str], export_overrides: list[str] | None = None,
                    tmp_path_factory: Any = None) -> Path:
    """Collect simulator traces (collect config ``overrides``) and export them (``export_overrides``).
    With ``tmp_path_factory``: a copy of the session's collection of ``overrides`` (``shared_traces``)."""
    if tmp_path_factory is None:
        traces = collect_traces(tmp / "traces", overrides)
    else:
        import shutil

        traces = Path(shutil.copytree(shared_traces(tmp_path_factory, overrides), tmp / "traces"))
    return (export_with_tracebridge(traces, tmp / "bundles", export_overrides)
            or write_bundle(views_from_traces(traces), tmp / "bundle"))
