"""Per-session samples the canary gates compare, read from traces or from a samples file.

A sample is one session of one arm: success, tokens, dollars, latency (session wall time, what
the user waited), reaction score (the feedback label ``feedback_score`` or ``feedback.score``),
verifier verdicts with a known ex-post outcome, and the safety counts: ``episode_error`` events
other than canary fallbacks, failed tool calls (``worker_tool_result`` with ``ok=false``), verifier
outputs with risk flags, and fallbacks to baseline and their kinds (from the ``canary`` session label). From
traces, the arm comes from the session label ``canary`` that ``CanaryRouter`` sets; runs without
it, and incomplete runs, are counted as skipped with their reason, never silently dropped.

Verifier verdicts (``docs/trace-conventions.md``): a verdict is scored when its event carries
``labels.expected_verdict``; otherwise only an ``end`` verdict is scored, correct when the session
succeeded.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson

from tracebridge.capture.reader import RunDir, iter_lines, iter_runs
from tracebridge.ops.canary import BASELINE, CANDIDATE, LABEL

ARMS = (BASELINE, CANDIDATE)


@dataclass
class Sample:
    """One session of one arm."""

    session_id: str
    arm: str
    policy: str = ""
    success: bool | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float | None = None
    reaction_score: float | None = None
    verdicts_correct: int = 0
    verdicts_total: int = 0
    fallbacks: int = 0
    fallback_kinds: list[str] = field(default_factory=list)  # timeout | invalid_output | <exception class>
    errors: int = 0  # episode_error events, canary fallbacks excluded (those are ``fallbacks``)
    tool_errors: int = 0  # worker_tool_result events with ok=false
    risk_flags: int = 0  # verifier_output events with a non-empty risk_flags list


@dataclass
class SampleSet:
    """Samples by arm, plus what was read and what could not be used (with reasons)."""

    by_arm: dict[str, list[Sample]] = field(default_factory=lambda: {a: [] for a in ARMS})
    read: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)

    seen: dict[str, str] = field(default_factory=dict, repr=False)  # session id -> where it was read

    def add(self, s: Sample, where: str = "") -> None:
        """File one sample under its arm, or skip it as a duplicate when its session was read before (a
        session counted twice weighs twice in every gate: a samples file concatenated twice, a run copied)."""
        if s.session_id in self.seen:
            self.skip(where or s.session_id, f"duplicate: session {s.session_id} already read at "
                      f"{self.seen[s.session_id] or 'an earlier sample'}")
            return
        self.seen[s.session_id] = where
        self.by_arm[s.arm].append(s)

    def skip(self, where: str, reason: str) -> None:
        """Record an input that could not be used, as ``{where, reason}``."""
        self.skipped.append({"where": where, "reason": reason})

    def counts(self) -> dict[str, Any]:
        """read = baseline + candidate + skipped, always."""
        reasons = Counter(s["reason"].split(":")[0] for s in self.skipped)
        return {"read": self.read, **{a: len(v) for a, v in self.by_arm.items()},
                "skipped": len(self.skipped), "skipped_by_reason": dict(reasons)}

    def policies(self, named: dict[str, str | None] | None = None) -> dict[str, str]:
        """The policy id of each arm: the one ``named`` gives it (``gate --baseline-policy``), else the most
        common one in its samples, else the arm's name.

        Raises:
            ValueError: ``named`` gives an arm another policy than its sessions carry (a report naming a policy
                its sessions never ran: promote would check the active policy against a name, not a measurement).
        """
        out = {}
        for arm, ss in self.by_arm.items():
            c = Counter(s.policy for s in ss if s.policy)
            flag = (named or {}).get(arm)
            if flag and c and flag not in c:
                raise ValueError(f"--{arm}-policy {flag}: the {arm} sessions carry policy "
                                 + ", ".join(f"{k} ({v} sessions)" for k, v in c.most_common())
                                 + f"; the flag names the policy of {arm} sessions that carry none")
            out[arm] = flag or (c.most_common(1)[0][0] if c else arm)
        return out


def feedback_score(labels: dict[str, Any]) -> float | None:
    """A reaction score from labels (``feedback_score`` or ``feedback.score``), if any."""
    v = labels.get("feedback_score")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    fb = labels.get("feedback")
    if isinstance(fb, dict) and isinstance(fb.get("score"), (int, float)):
        return float(fb["score"])
    return None


def _parse_ts(ts: str) -> dt.datetime:
    return dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")


def _scan_events(run: RunDir, success: bool | None) -> dict[str, int]:
    """One pass over the run's events: scored verdicts and the safety counts of a ``Sample``."""
    out = dict.fromkeys(("verdicts_correct", "verdicts_total", "errors", "tool_errors", "risk_flags"), 0)
    for line in iter_lines(run.events_path):
        ev = line.obj
        if not isinstance(ev, dict):
            continue
        et, payload, labels = ev.get("event_type"), ev.get("payload"), ev.get("labels")
        payload, labels = (v if isinstance(v, dict) else {} for v in (payload, labels))  # damaged: a traceback before
        if et == "episode_error":
            canary = labels.get(LABEL)
            out["errors"] += not (isinstance(canary, dict) and canary.get("fallback"))
        elif et == "worker_tool_result":
            out["tool_errors"] += payload.get("ok") is False
        elif et == "verifier_output":
            out["risk_flags"] += bool(payload.get("risk_flags"))
            verdict, expected = payload.get("verdict"), labels.get("expected_verdict")
            if expected is not None:
                out["verdicts_total"] += 1
                out["verdicts_correct"] += verdict == expected
            elif verdict == "end" and success is not None:
                out["verdicts_total"] += 1
                out["verdicts_correct"] += bool(success)
    return out


def sample_from_run(run: RunDir) -> tuple[Sample | None, str | None]:
    """One run's sample, or (None, reason) when it cannot be used."""
    if not run.complete:
        return None, "incomplete: no session.json"
    try:
        sess = run.read_session()
    except (OSError, orjson.JSONDecodeError) as exc:
        return None, f"unreadable: session.json: {exc}"
    # a damaged session (a string where a count goes, a list where an object goes) was a traceback of the whole
    # gate: it is skipped, named by field, as a bad line of a samples file is
    if not isinstance(sess, dict):
        return None, f"invalid: session.json: {type(sess).__name__}, not an object"
    for key in ("labels", "summary"):
        if not isinstance(sess.get(key) or {}, dict):
            return None, f"invalid: session.json:{key}: {sess[key]!r}, must be an object"
    labels, summary = sess.get("labels") or {}, sess.get("summary") or {}
    canary = labels.get(LABEL)
    if not isinstance(canary, dict) or canary.get("arm") not in ARMS:
        return None, "unlabeled: session.json:labels.canary.arm missing"
    try:
        latency = (_parse_ts(sess["finished_at"]) - _parse_ts(sess["started_at"])).total_seconds() * 1000
    except (KeyError, ValueError, TypeError):
        latency = None
    success = summary.get("success")
    tokens, cost, fallbacks = summary.get("tokens", 0), summary.get("cost_usd", 0.0), canary.get("fallbacks", 0)
    row = {"success": success, "cost_usd": cost, "fallbacks": fallbacks,
           "tokens": int(tokens) if _is_num(tokens) and tokens >= 0 and tokens == int(tokens) else tokens}
    if bad := _field_problem(row):
        where = {"success": "summary.success", "tokens": "summary.tokens", "cost_usd": "summary.cost_usd",
                 "fallbacks": "labels.canary.fallbacks"}[bad[0]]
        return None, f"invalid: session.json:{where}: {bad[1]}"
    counts = _scan_events(run, success) if run.events_path.is_file() else {}
    return Sample(
        session_id=sess.get("run_id", run.run_id), arm=canary["arm"], policy=str(canary.get("policy", "")),
        success=success, tokens=row["tokens"], cost_usd=float(cost), latency_ms=latency,
        reaction_score=feedback_score(labels), fallbacks=fallbacks,
        fallback_kinds=[str(k) for k in canary.get("fallback_kinds") or [] if isinstance(k, str)], **counts,
    ), None


def collect_from_traces(root: str | Path, since: str | None = None) -> SampleSet:
    """Samples of every canary-labelled run under ``root`` (streaming, run by run).

    Args:
        root: trace root.
        since: only runs that started at or after this schema timestamp (None = all).
    """
    out = SampleSet()
    for run in iter_runs(root):
        out.read += 1
        sample, reason = sample_from_run(run)
        if sample is None:
            out.skip(str(run.path), reason or "unknown")
            continue
        if since is not None:
            try:
                started = run.read_session().get("started_at", "")
            except (OSError, orjson.JSONDecodeError):
                started = ""
            if started < since:
                out.skip(str(run.path), f"before window: started {started} < {since}")
                continue
        out.add(sample, str(run.path))
    return out


_FIELDS = {f.name for f in fields(Sample)}
_COUNTS = ("tokens", "verdicts_correct", "verdicts_total", "fallbacks", "errors", "tool_errors", "risk_flags")


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _field_problem(row: dict[str, Any]) -> tuple[str, str] | None:
    """(field, why) for the first value a gate cannot use: a string count, a negative cost or a
    verdict count above its total would crash the gates or make the candidate look better."""
    if not isinstance(row.get("policy", ""), str):
        return "policy", "must be a string"
    if row.get("success") not in (None, True, False):
        return "success", f"{row['success']!r}: must be true, false or null"
    for k in _COUNTS:
        v = row.get(k, 0)
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
            return k, f"{v!r}: must be an integer >= 0"
    for k, optional in (("cost_usd", False), ("latency_ms", True), ("reaction_score", True)):
        v = row.get(k)
        if (v is None and optional) or (k not in row and not optional):
            continue
        if not _is_num(v) or (k != "reaction_score" and v < 0):
            return k, f"{v!r}: must be a number" + ("" if k == "reaction_score" else " >= 0")
    kinds = row.get("fallback_kinds", [])
    if not (isinstance(kinds, list) and all(isinstance(k, str) for k in kinds)):
        return "fallback_kinds", f"{kinds!r}: must be a list of strings"
    if row.get("verdicts_correct", 0) > row.get("verdicts_total", 0):
        return "verdicts_correct", f"{row['verdicts_correct']} > verdicts_total {row.get('verdicts_total', 0)}"
    return None


# reasons a line is no sample row at all (not JSON, no object, fields a sample has not): a file of only those is another file
NOT_SAMPLES = ("invalid: invalid JSON", "invalid: line is not an object", "invalid: unknown field")


def load_samples_file(path: str | Path) -> SampleSet:
    """Samples from a JSONL file, one ``Sample`` per line (``arm`` and ``session_id`` required).

    Bad lines are skipped with ``file:line:field: reason``; counts reconcile.
    """
    out = SampleSet()
    for line in iter_lines(path):
        out.read += 1
        where = f"{path}:{line.lineno}"
        if line.error:
            out.skip(where, f"invalid: {line.error}")
            continue
        row = line.obj
        if not isinstance(row, dict):
            out.skip(where, "invalid: line is not an object")
            continue
        unknown = sorted(set(row) - _FIELDS)
        if unknown:
            out.skip(f"{where}:{unknown[0]}", f"invalid: unknown field (known: {', '.join(sorted(_FIELDS))})")
            continue
        if row.get("arm") not in ARMS:
            out.skip(f"{where}:arm", f"invalid: arm={row.get('arm')!r}, expected baseline or candidate")
            continue
        if not isinstance(row.get("session_id"), str):
            out.skip(f"{where}:session_id", "invalid: session_id must be a string")
            continue
        bad = _field_problem(row)
        if bad:
            out.skip(f"{where}:{bad[0]}", f"invalid: {bad[1]}")
            continue
        try:
            out.add(Sample(**row), f"{where}:session_id")
        except TypeError as exc:
            out.skip(where, f"invalid: {exc}")
    return out


def write_samples(path: str | Path, samples: list[Sample]) -> None:
    """Write samples as JSONL (for fixtures and for `gate --samples`)."""
    with open(path, "wb") as fh:
        fh.writelines(orjson.dumps(asdict(s)) + b"\n" for s in samples)
