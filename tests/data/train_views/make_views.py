"""Writes the small hand-made export bundle in this folder (views in TRL formats + manifest.json).

Rows follow tracebridge/schema/roles.py and the export contract: {"messages", "tools"?, "meta"} for
SFT views, {"prompt", "chosen", "rejected", "meta"} for preference pairs; meta = run_id, event_ids,
goal_family, split, source, labels. Families split train (fs, sql), validation (calc), test (docs).
Run: python tests/data/train_views/make_views.py   (deterministic; rewrites the files)
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from tracebridge.schema import roles

HERE = Path(__file__).resolve().parent
SPLITS = {"fs": "train", "sql": "train", "calc": "validation", "docs": "test"}
TOOLS = {
    "fs": {"read_file": {"path": "string"}, "grep": {"pattern": "string", "path": "string"}},
    "sql": {"sql_query": {"query": "string"}},
    "calc": {"calculate": {"expression": "string"}},
    "docs": {"search_docs": {"query": "string"}, "read_doc": {"doc_id": "string"}},
}
WORDS = ["alpha", "beta", "gamma", "delta", "notes", "report", "sales", "rivers", "paris", "oslo"]


def tool_schemas(family):
    return [{"type": "function", "function": {
        "name": name, "description": f"{name} tool",
        "parameters": {"type": "object", "properties": {k: {"type": t} for k, t in args.items()},
                       "required": list(args), "additionalProperties": False}}}
            for name, args in TOOLS[family].items()]


def meta(family, i, view, labels=None):
    return {"run_id": f"{family}-{i:03d}", "event_ids": [f"{family}-{i:03d}:{j}" for j in range(2)],
            "goal_family": family, "split": SPLITS[family], "source": "sim", "labels": labels or {}}


def call_args(family, tool, rng):
    w = rng.choice(WORDS)
    return {k: (f"{w}.txt" if k == "path" else f"{w}" if k != "query" else f"select {w}") for k in TOOLS[family][tool]}


def verifier_rows(rng, family, i):
    total = rng.randint(1, 4)
    kind = rng.choice(["continue", "replan", "end"])
    done = total if kind == "end" else rng.randint(0, total - 1)
    ok = kind != "replan"
    evidence = {"tool": rng.choice(list(TOOLS[family])), "ok": ok,
                "output": rng.choice(WORDS) if ok else None,
                "error": None if ok else {"kind": rng.choice(["not_found", "bad_args", "timeout"]),
                                          "message": "failed twice"}}
    user = roles.verifier_user_text({"plan_progress": {"completed": done, "total": total, "current": done},
                                     "evidence": [evidence]})
    fb = {"continue": "next step", "replan": "step failed beyond retry", "end": "goal reached"}[kind]
    labels = {"expected_verdict": kind}
    sft = {"messages": roles.messages("verifier", user, roles.verifier_reply_text({"verdict": kind, "feedback": fb})),
           "meta": meta(family, i, "verifier_sft", labels)}
    wrong = rng.choice([v for v in roles.VERDICTS if v != kind])
    pair = {"prompt": roles.messages("verifier", user),
            "chosen": [{"role": "assistant", "content": roles.verifier_reply_text({"verdict": kind, "feedback": fb})}],
            "rejected": [{"role": "assistant", "content": roles.verifier_reply_text({"verdict": wrong, "feedback": fb})}],
            "meta": meta(family, i, "verifier_pref_pairs", {**labels, "rejected_verdict": wrong})}
    return sft, pair


def planner_row(rng, family, i):
    tools = list(TOOLS[family])
    steps = [{"index": k, "description": f"use {t}", "tool": t, "args": call_args(family, t, rng)}
             for k, t in enumerate(rng.sample(tools, len(tools)))]
    user = roles.planner_user_text({"goal": f"find {rng.choice(WORDS)} in {family}", "tool_mask": tools})
    reply = roles.planner_reply_text({"plan": steps, "rationale": "in order", "confidence": 0.8})
    return {"messages": roles.messages("planner", user, reply),
            "meta": meta(family, i, "planner_sft", {"tool_mask": tools})}


def worker_rows(rng, family, i):
    tool = rng.choice(list(TOOLS[family]))
    args = call_args(family, tool, rng)
    user = roles.worker_user_text({"plan_step": {"index": 0, "description": f"call {tool}", "tool": tool},
                                   "allowed_tools": list(TOOLS[family])})
    base = roles.messages("worker", user)
    good = [roles.tool_call_message("c1", tool, args), {"role": "tool", "content": json.dumps({"ok": True, "output": "3"})},
            {"role": "assistant", "content": "done: 3"}]
    sft = {"messages": base + good, "tools": tool_schemas(family), "meta": meta(family, i, "worker_sft")}
    bad_args = {k: v + "_missing" for k, v in args.items()}
    fail = [roles.tool_call_message("c1", tool, bad_args),
            {"role": "tool", "content": json.dumps({"ok": False, "error": {"kind": "not_found", "message": "no such"}})}]
    rec_sft = {"messages": base + fail + [roles.tool_call_message("c2", tool, args)] + good[1:],
               "tools": tool_schemas(family), "meta": meta(family, i, "worker_recovery_cases", {"recovery": True})}
    rec_pair = {"prompt": base + fail, "chosen": [roles.tool_call_message("c2", tool, args)],
                "rejected": [roles.tool_call_message("c2", tool, bad_args)], "tools": tool_schemas(family),
                "meta": meta(family, i, "worker_recovery_cases", {"recovery": True})}
    return sft, rec_sft, rec_pair


def main() -> None:
    rng = random.Random(7)
    views = {v: [] for v in ("planner_sft", "worker_sft", "verifier_sft", "verifier_pref_pairs", "worker_recovery_cases")}
    for family, n in (("fs", 24), ("sql", 24), ("calc", 8), ("docs", 16)):
        for i in range(n):
            sft, pair = verifier_rows(rng, family, i)
            views["verifier_sft"].append(sft)
            views["verifier_pref_pairs"].append(pair)
            if i < n // 2:
                views["planner_sft"].append(planner_row(rng, family, i))
                w, rs, rp = worker_rows(rng, family, i)
                views["worker_sft"].append(w)
                if i % 2 == 0:
                    views["worker_recovery_cases"] += [rs, rp]
    views["verifier_sft"].append(views["verifier_sft"][0])  # an exact duplicate, for dedup
    files = []
    for name, rows in views.items():
        data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode()
        (HERE / f"{name}.jsonl").write_bytes(data)
        files.append({"path": f"{name}.jsonl", "sha256": hashlib.sha256(data).hexdigest(), "rows": len(rows),
                      "bytes": len(data)})
    bundle_id = hashlib.sha256("".join(f["sha256"] for f in files).encode()).hexdigest()
    manifest = {"bundle_id": bundle_id, "created_at": "2026-01-01T00:00:00.000Z", "files": files,
                "note": "hand-made test fixture (tests/data/train_views/make_views.py)"}
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
