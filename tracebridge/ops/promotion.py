"""Promotion and rollback of the active policy, with an append-only, hash-chained history.

State (one folder per deployment, ``promotion.state_dir``)::

    history.jsonl   one record per promote/rollback, appended with one write + fsync, never rewritten
    active.json     the last record, replaced atomically (what the runtime reads, lock-free)
    .lock           held (filelock) for the whole read-check-append-replace of every change

A record: ``seq`` (1, 2, ...), ``action`` (promote | rollback), ``at``, ``active_policy``,
``previous_policy``, ``stack`` (policies a rollback walks back through), ``report_id`` and
``report_sha256`` of the gate report, ``gate`` (passed, reasons, check statuses), ``actor``,
``prev_hash`` (the previous record's ``hash``) and ``hash`` (sha256 of the record without it).
History is the source of truth: it is appended first, then ``active.json`` is replaced, and a
change that died in between is repaired (``active.json`` rewritten from history) by the next
change under the lock; a record torn mid-append is moved to ``history.jsonl.torn``. Two changes
never interleave, so concurrent promotions leave a history whose seqs run 1..n with an unbroken
hash chain.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock, Timeout

from tracebridge.capture.reader import iter_lines
from tracebridge.capture.writer import write_atomic
from tracebridge.importers.jsonl import json_error
from tracebridge.ops.locks import describe_flock_holders
from tracebridge.ops.promotion_inputs import (  # NotAGateReport re-exported: callers import it from here
    NotAGateReport,  # noqa: F401
    PolicyLocked,
    PromotionError,
    load_gate_report,
)
from tracebridge.schema.canonical import canonical_json, sha256_json, utc_now

HISTORY = "history.jsonl"
ACTIVE = "active.json"
LOCK = ".lock"


@dataclass
class PolicyState:
    """A state folder and its lock."""

    root: Path
    lock_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    @property
    def history_path(self) -> Path:
        """The history file, ``<root>/history.jsonl``."""
        return self.root / HISTORY

    @property
    def active_path(self) -> Path:
        """The active-policy file, ``<root>/active.json``."""
        return self.root / ACTIVE

    def check_root(self) -> None:
        """Refuse a state path that exists but is not a folder (a file there would look like no history)."""
        if self.root.exists() and not self.root.is_dir():
            raise PromotionError(f"{self.root}: policy state path is not a folder (promotion.state_dir / --state)")

    def lock(self) -> FileLock:
        """The state folder's file lock (created with the folder if missing), to use as ``with``."""
        self.check_root()
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / LOCK), timeout=self.lock_timeout_s)


def read_history(state: PolicyState) -> list[dict[str, Any]]:
    """Every record of the history, in order.

    Raises:
        PromotionError: a line does not parse (``history.jsonl:N``), or the file cannot be read: the
            history needs an operator.
    """
    state.check_root()
    out = []
    try:
        if not state.history_path.is_file():
            return []
        for line in iter_lines(state.history_path):
            if line.torn:  # a change killed mid-append: never activated, cut by the next change
                continue
            error = line.error or (None if isinstance(line.obj, dict) else
                                   f"a record must be a JSON object, not {type(line.obj).__name__}")
            if error:
                raise PromotionError(f"{state.history_path}:{line.lineno}: {error}; history is damaged, "
                                     "repair it by hand before any promotion (records are never rewritten)")
            out.append(line.obj)
    except OSError as exc:  # no permission, an I/O error: the router falls back, promote/rollback refuse
        raise PromotionError(f"{state.history_path}: cannot be read ({exc}); fix its permissions or storage "
                             "before any promotion") from exc
    return out


def verify_history(records: list[dict[str, Any]]) -> list[str]:
    """Problems of a history: seq gaps, broken hash chain, stack not matching the active policy."""
    problems = []
    prev_hash = None
    for i, rec in enumerate(records, start=1):
        where = f"{HISTORY}:{i}"
        if rec.get("seq") != i:
            problems.append(f"{where}:seq: {rec.get('seq')} (expected {i})")
        if rec.get("prev_hash") != prev_hash:
            problems.append(f"{where}:prev_hash: does not match record {i - 1}")
        body = {k: v for k, v in rec.items() if k != "hash"}
        if rec.get("hash") != sha256_json(body):
            problems.append(f"{where}:hash: record content does not match its hash")
        stack = rec.get("stack")
        stack = stack if isinstance(stack, list) else []  # a hand-edited non-list stack is a problem, not a crash
        if not stack or stack[-1] != rec.get("active_policy"):
            problems.append(f"{where}:stack: top {stack[-1:]} is not active_policy {rec.get('active_policy')}")
        prev_hash = rec.get("hash")
    return problems


def active_record(state: PolicyState) -> dict[str, Any] | None:
    """The active record as the runtime sees it (``active.json``; no lock needed).

    Raises:
        PromotionError: ``active.json`` is no file (a folder there read as "no policy": the canary slice opened
            and promote appended a record it could not activate), is unreadable (empty, truncated), not a JSON
            object or names no ``active_policy`` (the next change rewrites it from the history, if it has one).
    """
    p = state.active_path
    if not os.path.lexists(p):
        return None
    if not p.is_file():
        what = "a folder" if p.is_dir() else "a dangling link" if p.is_symlink() and not p.exists() else "not a file"
        raise PromotionError(f"{p}: {what}, not the active-policy record (a JSON file); move it away, then check with "
                             f"tracebridge ops policy --state {state.root}")
    try:
        raw = p.read_bytes()
        rec = orjson.loads(raw)
    except OSError as exc:
        raise PromotionError(f"{p}: unreadable: {exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise PromotionError(f"{p}: unreadable: {'empty file' if not raw.strip() else 'not valid JSON: ' + json_error(raw)}"
                             " (truncated or edited)") from exc
    if not isinstance(rec, dict):
        raise PromotionError(f"{p}: not a JSON object")
    if not isinstance(rec.get("active_policy"), str) or not rec["active_policy"]:
        raise PromotionError(f"{p}:active_policy: {rec.get('active_policy')!r}, not a policy id: no record of the history")
    return rec


def _active_or_none(state: PolicyState) -> dict[str, Any] | None:
    """``active.json``, or None when it is damaged (history is the truth, so it is rewritten)."""
    try:
        return active_record(state)
    except PromotionError:
        return None


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}:{os.getpid()}"


def _append(state: PolicyState, records: list[dict[str, Any]], fields: dict[str, Any]) -> dict[str, Any]:
    """Finish, append and activate one record (caller holds the lock)."""
    last = records[-1] if records else None
    rec = {"seq": len(records) + 1, "at": utc_now(), "actor": _actor(),
           "prev_hash": last["hash"] if last else None, **fields}
    rec["hash"] = sha256_json(rec)
    fd = os.open(state.history_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        data = canonical_json(rec) + b"\n"
        if os.write(fd, data) != len(data):
            raise PromotionError(f"{state.history_path}: short write; nothing was activated")
        os.fsync(fd)
    finally:
        os.close(fd)
    write_atomic(state.active_path, orjson.dumps(rec, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return rec


def _torn_start(state: PolicyState) -> tuple[bytes, int | None]:
    """The history's bytes and where its unterminated last line starts (None: there is none)."""
    p = state.history_path
    data = p.read_bytes() if p.is_file() else b""
    return data, (None if not data or data.endswith(b"\n") else data.rfind(b"\n") + 1)


def torn_tail(state: PolicyState) -> str | None:
    """``history.jsonl:N: why`` when the history ends in an unterminated line (a promote or rollback killed
    mid-append: never activated, not counted as a record), else None; read-only (the next change moves it)."""
    data, cut = _torn_start(state)
    if cut is None:
        return None
    line = data.count(b"\n") + 1
    return (f"{state.history_path}:{line}: unterminated last line ({len(data) - cut} bytes): a "
            f"promote or rollback was killed while appending it, so it never took effect; the next change moves it "
            f"to {HISTORY}.torn")


def _cut_torn_tail(state: PolicyState) -> None:
    """Move an unterminated last history line (a change killed mid-append, so never activated) to
    ``history.jsonl.torn``, kept for audit, and cut it from the history (caller holds the lock)."""
    p = state.history_path
    data, cut = _torn_start(state)
    if cut is None:
        return
    fd = os.open(p.with_name(HISTORY + ".torn"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, data[cut:] + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.truncate(p, cut)


def active_outside_history(state: PolicyState, records: list[dict[str, Any]]) -> str | None:
    """Why ``active.json`` cannot be repaired from the history: it is a record the history does not hold (the
    history was lost, cut or replaced: no change writes one without the other); None when it is one of the
    history's records, absent or unreadable (a change that died half-way: the next one rewrites it)."""
    rec = _active_or_none(state)
    if rec is None or rec.get("hash") in {r.get("hash") for r in records}:
        return None
    return (f"{state.active_path}: the active policy {rec.get('active_policy')!r} (record {rec.get('seq')}) is not in "
            f"{state.history_path} ({len(records)} records): the history was lost, cut or replaced; restore it before "
            "any promote or rollback (a change now would rest on the wrong active policy and lose its rollback path)")


def _load_checked(state: PolicyState) -> list[dict[str, Any]]:
    """History under the lock: a torn tail cut, verified, and active.json repaired if a change
    died half-way (refused when active.json is a record the history does not hold)."""
    _cut_torn_tail(state)
    records = read_history(state)
    problems = verify_history(records)
    if problems:
        raise PromotionError("history is inconsistent: " + "; ".join(problems[:5]))
    try:
        active_record(state)
    except PromotionError as exc:  # before: a folder let the record be appended, then its activation crashed;
        # a damaged file with no history to repair it from was overwritten, the policy it named lost
        if os.path.lexists(state.active_path) and not state.active_path.is_file():
            raise
        if not records:
            raise PromotionError(f"{exc}; {state.history_path} holds no record to repair it from, so the active "
                                 "policy cannot be known: restore it (or remove it if no policy was ever promoted "
                                 "here) before any promote or rollback") from exc
    if lost := active_outside_history(state, records):  # before, the next change rested on the report's baseline
        raise PromotionError(lost)
    if records and _active_or_none(state) != records[-1]:
        write_atomic(state.active_path, orjson.dumps(records[-1], option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return records


def _used_by(records: list[dict[str, Any]], report_id: str) -> dict[str, Any] | None:
    """The earlier promotion that used this gate report, if any."""
    return next((r for r in records if r.get("action") == "promote" and r.get("report_id") == report_id), None)


def promote(state: PolicyState, report_path: str | Path, require_baseline_match: bool = True,
            note: str = "", allow_reused_report: bool = False) -> dict[str, Any]:
    """Make the gate report's candidate the active policy; return the new record.

    A gate report promotes once: after a rollback, promoting the same candidate again needs a new
    gate run, so the decision rests on evidence from after the rollback, not before it.

    Args:
        allow_reused_report: let a report that already promoted once promote again (chaos tests).

    Raises:
        PromotionError: the gate did not pass, the report is stale (its baseline is not the active
            policy), damaged or already used, the candidate is already active, or the lock could
            not be taken.
    """
    rep, digest = load_gate_report(report_path)
    if not rep["passed"]:
        reasons = rep.get("reasons") if isinstance(rep.get("reasons"), list) else []  # not in the id: never checked
        shown: list[str] = []  # whole reasons up to ~500 characters (a cut at 500 ended mid-word: "in the c;")
        for r in map(str, reasons):
            if shown and len("; ".join([*shown, r])) > 500:
                break
            shown.append(r)
        more = f"; and {len(reasons) - len(shown)} more (the report's reasons)" if len(shown) < len(reasons) else ""
        raise PromotionError(f"{report_path}: gate did not pass: {'; '.join(shown)}{more}; "
                             "promotion needs a gate pass")
    cand, base = rep["policies"].get("candidate"), rep["policies"].get("baseline")
    try:
        with state.lock():
            records = _load_checked(state)
            cur = records[-1] if records else None
            active = cur["active_policy"] if cur else base
            if cand == active:
                raise PromotionError(f"{cand} is already the active policy (record {cur and cur['seq']})")
            used = None if allow_reused_report else _used_by(records, rep["report_id"])
            if used is not None:
                raise PromotionError(f"{report_path}: this gate report already promoted {used['active_policy']} "
                                     f"(record {used['seq']}), so its evidence predates what followed; run the gate again on "
                                     "canary samples taken since")
            if require_baseline_match and active != base:
                raise PromotionError(f"{report_path}: stale report: it gated {cand} against {base}, but the "
                                     f"active policy is {active}; gate again against {active}")
            stack = (cur["stack"] if cur else [base]) + [cand]
            gate = {"passed": True, "checks": {c["name"]: c["status"] for c in rep["checks"]}}
            return _append(state, records, {
                "action": "promote", "active_policy": cand, "previous_policy": active, "stack": stack,
                "report_id": rep["report_id"], "report_sha256": digest, "report_path": str(report_path),
                "gate": gate, "note": note})
    except Timeout as exc:
        raise _locked(state) from exc


def _locked(state: PolicyState) -> PolicyLocked:
    """The error of a change that waited ``lock_timeout_s`` for the policy lock, naming who holds it (pid and
    command line, read from /proc/locks: a holder note would add a write to every change)."""
    who = describe_flock_holders(state.root / LOCK)
    return PolicyLocked(f"{state.root / LOCK}: another promote, rollback or prune held the policy lock for "
                        f"{state.lock_timeout_s:g} s{f' (held by {who})' if who else ''}; nothing was changed: try again")


def rollback(state: PolicyState, note: str = "", allow_missing: bool = False) -> dict[str, Any]:
    """Restore the policy that was active before the current one; return the new record.

    Args:
        allow_missing: roll back to a policy whose id is an absolute path that no longer exists (its model
            folder was removed by hand): without it that is refused, as the runtime could not load it.

    Raises:
        PromotionError: nothing to roll back to, a policy folder that is gone, or the lock could not be taken.
    """
    state.check_root()
    if not state.root.exists():  # no promotion yet (or a mistyped --state): taking the lock made the folder
        raise PromotionError(f"{state.root}: nothing to roll back to (no policy state there: no promotion yet)")
    try:
        with state.lock():
            records = _load_checked(state)
            cur = records[-1] if records else None
            if cur is None or len(cur["stack"]) < 2:
                raise PromotionError(f"{state.root}: nothing to roll back to (no earlier policy in the history)")
            stack = cur["stack"][:-1]
            target = stack[-1]
            if not allow_missing and isinstance(target, str) and os.path.isabs(target) and not os.path.exists(target):
                raise PromotionError(f"{target}: the policy to roll back to (record {cur['seq']}'s previous) names a "
                                     "folder that no longer exists, so the runtime could not load it (retention keeps "
                                     "every policy of the history: it was removed by hand or elsewhere); restore it, or "
                                     "roll back anyway with --allow-missing")
            return _append(state, records, {
                "action": "rollback", "active_policy": stack[-1], "previous_policy": cur["active_policy"],
                "stack": stack, "report_id": None, "report_sha256": None, "report_path": None,
                "gate": None, "note": note or f"rollback of record {cur['seq']}"})
    except Timeout as exc:
        raise _locked(state) from exc
