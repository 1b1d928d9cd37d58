"""What promotion reads and how it refuses: its errors, and the gate report ``tracebridge promote --report`` reads
(``tracebridge.ops.promotion`` re-exports them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tracebridge.importers.jsonl import json_error
from tracebridge.ops.gates import gate_report_id
from tracebridge.schema.canonical import sha256_bytes


class PromotionError(RuntimeError):
    """A promote/rollback was refused; the message says why and what to do."""


class NotAGateReport(PromotionError):
    """The file given as the gate report is none (not JSON, not a report's object): bad input, not a refusal."""


class PolicyLocked(PromotionError):
    """Another promote, rollback or prune held the state's lock past ``PolicyState.lock_timeout_s``: nothing was
    changed, try again (the CLI exits 3, as every other command that finds its lock taken)."""


def load_gate_report(path: str | Path) -> tuple[dict[str, Any], str]:
    """Read a gate report and check its id; return (report, sha256 of the file).

    Raises:
        NotAGateReport: unreadable, not JSON (the message gives the line and column), or not a gate report.
        PromotionError: its content does not match its id.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise NotAGateReport(f"{p}: cannot read gate report: {exc.strerror or exc}") from exc
    try:
        rep = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise NotAGateReport(f"{p}: cannot read gate report: not valid JSON: {json_error(raw)}") from exc
    if not isinstance(rep, dict):
        raise NotAGateReport(f"{p}: not a gate report (a JSON object; run tracebridge gate --out)")
    missing = [k for k in ("passed", "checks", "policies", "report_id") if k not in rep]
    if missing:
        raise NotAGateReport(f"{p}:{missing[0]}: not a gate report (run tracebridge gate --out)")
    if bad := _shape_problem(rep):
        raise NotAGateReport(f"{p}:{bad}; not a gate report (run tracebridge gate --out)")
    if gate_report_id(rep) != rep["report_id"]:
        raise PromotionError(f"{p}:report_id: content does not match the id; the report was edited")
    return rep, sha256_bytes(raw)


def _shape_problem(rep: dict[str, Any]) -> str | None:
    """``field: value, what it must be`` for the first field of a gate report whose type promote cannot use, or
    None. Unchecked, ``"passed": "false"`` (a string, so true) promoted, a report without a candidate made no
    policy (null) the active one, and a list where an object goes was a traceback."""
    if not isinstance(rep["passed"], bool):
        return f"passed: {rep['passed']!r}, must be true or false"
    pol = rep["policies"]
    if not isinstance(pol, dict):
        return f"policies: {pol!r}, must be an object with the candidate and baseline policy ids"
    for arm in ("candidate", "baseline"):
        if not isinstance(pol.get(arm), str) or not pol[arm].strip():
            return f"policies.{arm}: {pol.get(arm)!r}, must be a policy id (a non-empty string)"
    checks = rep["checks"]
    if not isinstance(checks, list):
        return f"checks: {checks!r}, must be a list of checks"
    for i, c in enumerate(checks):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not isinstance(c.get("status"), str):
            return f"checks[{i}]: {c!r}, must be an object with a name and a status"
    return None
