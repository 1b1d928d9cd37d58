"""How the canary router follows ``tracebridge promote`` and ``tracebridge rollback``: the state of the
candidate's rollout, read from the promotion state's ``active.json`` (``tracebridge.ops.promotion``).

The contract (``CanaryRouter(..., state=PolicyState(promotion.state_dir))``), by the active record:

* no ``active.json`` yet, or ``active_policy`` is ``canary.baseline_policy`` (the candidate is gated
  against the active policy) and the candidate was never rolled back: the canary runs, the slice goes to
  the candidate;
* ``active_policy`` is ``canary.candidate_policy`` (promoted): every session goes to the candidate (still
  failing open to the baseline);
* the candidate was rolled back (a record of the history, ``history.jsonl``, with ``action: rollback`` and
  ``previous_policy`` the candidate, and no promotion of the candidate after it): every session goes to the
  baseline, also after a later promote-then-rollback of another policy makes the baseline active again
  (before, that reopened the slice to the rolled-back candidate). A rolled-back id never gets canary traffic
  again on its own: the evidence that rolled it back is about that id, so a fixed build is a new
  ``canary.candidate_policy`` id, gated afresh; the reason (the router's route events, its warning log,
  ``tracebridge ops canary-status``) says so;
* any other active policy (the canary config names neither arm), or an ``active.json`` (or, while the
  baseline is active, a ``history.jsonl``) that cannot be read: every session goes to the baseline (the
  router has no other policy to serve), with a warning; ``ActivePolicyWatch.error`` says why (``tracebridge ops
  canary-status`` exits 1 on it).

``active.json`` is replaced atomically by every change, so it is re-read only when its inode, size or
mtime changes: a rollback reaches the next call without a restart.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CANDIDATE = "candidate"
BASELINE = "baseline"


def rolled_back(history: list[dict[str, Any]], policy: str) -> dict[str, Any] | None:
    """The last record of ``history`` that rolled ``policy`` back, unless a later record promoted it again."""
    out = None
    for rec in history:
        if rec.get("action") == "rollback" and rec.get("previous_policy") == policy:
            out = rec
        elif rec.get("action") == "promote" and rec.get("active_policy") == policy:
            out = None
    return out


def rollout_arm(record: dict[str, Any] | None, baseline_policy: str, candidate_policy: str,
                history: list[dict[str, Any]] | None = None) -> tuple[str | None, str]:
    """``(None, why)`` while the canary slice routes, else ``(arm, why)``: the arm every call goes to (pure).

    Args:
        record: the active record (``active.json``), None for none.
        history: the promotion history (``history.jsonl``, oldest first); None = only ``record`` is known.
    """
    if record is None:
        return None, f"no active policy recorded: canary of {candidate_policy} against {baseline_policy}"
    active, seq = record.get("active_policy"), record.get("seq")
    if active == candidate_policy:
        return CANDIDATE, f"{candidate_policy} promoted (record {seq}): every session to the candidate"
    if active == baseline_policy:
        back = rolled_back([*(history or []), *([] if history else [record])], candidate_policy)
        if back is not None:
            since = "" if back.get("seq") == seq else f"; {baseline_policy} active again since record {seq}"
            return BASELINE, (f"{candidate_policy} rolled back (record {back.get('seq')}){since}: every session to the "
                              f"baseline; a rolled-back candidate gets no canary traffic again: to canary a fixed "
                              f"build, give it a new canary.candidate_policy id")
        return None, f"{baseline_policy} active (record {seq}): canary of {candidate_policy}"
    return BASELINE, (f"active policy {active} (record {seq}) is neither canary.baseline_policy={baseline_policy} nor "
                      f"canary.candidate_policy={candidate_policy}: every session to the baseline")


class ActivePolicyWatch:
    """The rollout decision of one router, re-read from ``active.json`` when the file changes.

    Args:
        state: a ``PolicyState`` or its folder (``promotion.state_dir``).
    """

    def __init__(self, state: Any) -> None:
        # imported here, not at the top: promotion imports gates -> samples -> canary -> this module
        from tracebridge.ops.promotion import PolicyState

        self.state = state if isinstance(state, PolicyState) else PolicyState(Path(state))
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None  # None: never read
        self._decision: tuple[str | None, str] = (None, "")
        self.error: str | None = None  # why the last decision could not read the state (it fell back to the baseline)

    def decide(self, baseline_policy: str, candidate_policy: str) -> tuple[str | None, str]:
        """``rollout_arm`` of the current ``active.json``; an unreadable one sends every call to the baseline."""
        from tracebridge.ops.promotion import PromotionError, active_record, read_history

        try:
            st = os.stat(self.state.active_path)
            key: tuple[Any, ...] = (st.st_ino, st.st_size, st.st_mtime_ns, baseline_policy, candidate_policy)
        except FileNotFoundError:
            key = (None, baseline_policy, candidate_policy)
        except OSError as exc:  # e.g. promotion.state_dir is a file: as loud as an unreadable active.json
            error = f"{self.state.active_path}: cannot stat ({exc})"
            decision = (BASELINE, f"{error}: every session to the baseline")
            with self._lock:
                if decision != self._decision:
                    log.warning("canary rollout: %s", decision[1])
                self._key, self._decision, self.error = None, decision, error  # re-read once it can be stat'ed again
            return decision
        with self._lock:
            if key == self._key:
                return self._decision
            error = None
            try:  # the history is appended before active.json is replaced: a new active.json means a new history
                record = active_record(self.state)
                history = read_history(self.state) if record and record.get("active_policy") == baseline_policy else None
                decision = rollout_arm(record, baseline_policy, candidate_policy, history)
            except PromotionError as exc:
                error = str(exc)
                decision = (BASELINE, f"{exc}: every session to the baseline")
            if decision[0] is not None and decision != self._decision:
                log.warning("canary rollout: %s", decision[1])
            self._key, self._decision, self.error = key, decision, error
            return decision
