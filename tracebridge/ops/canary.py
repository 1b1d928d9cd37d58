"""Canary router for the agent runtime (phase 3): a small, deterministic slice of sessions goes to
the candidate policy; everything else, and every candidate failure, goes to the baseline.

    router = CanaryRouter(baseline=call_baseline, candidate=call_candidate,
                          config=CanaryConfig(fraction=0.05, timeout_s=20), validate=parse_ok)
    with Recorder("traces", goal=..., model_stack=..., runtime_config=...) as run:
        result = router.call(session_id, messages, recorder=run)

**Slice.** A session is in the slice when ``sha256(salt + ":" + session_id)``, read as a number in
[0, 1), is below ``fraction``: the same session always gets the same arm, on every host and
Python version, and raising the fraction only adds sessions (no one moves out). The slice stays
small: a config whose ``fraction`` exceeds ``max_fraction`` (default 0.2) is refused, and the router
never routes above ``max_fraction`` even if its config is changed after construction.

**Fail-open.** A candidate call runs in a worker thread with ``timeout_s``. If it raises (anything but
``KeyboardInterrupt``: ``SystemExit`` or ``asyncio.CancelledError`` from the candidate too), times
out, or its output fails ``validate``, the router calls the baseline with the same arguments
and returns that. A timed-out thread cannot be killed: it finishes in the background and its
result is dropped; the pool is bounded (``max_workers``), so a hung candidate saturates it and
further candidate calls time out too: still fail-open, never unbounded threads. One router may be
shared by the agent's threads: its ``stats`` counters are updated under a lock.

**Events** (through the run's ``Recorder``, role ``orchestrator``; the label key is ``canary``):

* each decision: ``orchestrator_transition`` ``from_state="route"``, ``to_state`` = the arm
  (``candidate`` | ``baseline``), ``reason`` = why (``bucket 0.0312 < fraction 0.05``), labels
  ``{"canary": {"arm", "policy", "bucket", "fraction", "salt"}}``;
* each fallback: ``episode_error`` with ``kind`` = ``timeout`` | ``invalid_output`` | the
  exception class, ``recoverable=true``, labels ``{"canary": {"fallback": reason, "policy"}}``,
  then ``orchestrator_transition`` ``candidate → baseline`` with reason ``fallback: <reason>``.

The router also sets the session label ``canary`` = ``{"arm", "policy", "fallbacks"}`` on the
recorder, so gates can split sessions by arm from ``session.json`` alone.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Self

from tracebridge.ops.config import CanaryConfig
from tracebridge.ops.rollout import BASELINE, CANDIDATE, ActivePolicyWatch
from tracebridge.schema.events import ErrorKind

log = logging.getLogger(__name__)

LABEL = "canary"


def slice_bucket(session_id: str, salt: str) -> float:
    """The session's position in [0, 1): the first 8 bytes of sha256(salt:session_id)."""
    digest = hashlib.sha256(f"{salt}:{session_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def in_slice(session_id: str, fraction: float, salt: str) -> bool:
    """True when the session belongs to the candidate slice."""
    return slice_bucket(session_id, salt) < fraction


@dataclass
class RouteResult:
    """What one routed call returned and how it got there."""

    output: Any
    arm: str  # the arm the slice chose
    served_by: str  # who produced ``output``: candidate | baseline
    policy: str  # policy id that produced ``output``
    fallback: str | None  # None, or timeout | invalid_output | <exception class>
    latency_ms: float
    bucket: float


class CanaryRouter:
    """Routes calls between a baseline and a candidate policy, failing open to the baseline.

    Args:
        baseline: the production policy, ``f(*args, **kwargs) -> output``; its exceptions propagate
            (there is nothing left to fall back to).
        candidate: the policy under test, same signature.
        config: fraction (at most ``max_fraction``), salt, timeout, pool size and policy ids.
        validate: checks a candidate output; returns True/None when fine, False or a message when
            not. Default: any output that is not None.
        state: the promotion state (``PolicyState`` or ``promotion.state_dir``) whose ``active.json`` the
            router follows (``tracebridge.ops.rollout``): the slice while the baseline is active, every
            session to the candidate once promoted, to the baseline once it is rolled back. None = the
            slice only, whatever promote and rollback did.
    """

    def __init__(self, baseline: Callable[..., Any], candidate: Callable[..., Any],
                 config: CanaryConfig | None = None,
                 validate: Callable[[Any], bool | str | None] | None = None, state: Any = None) -> None:
        self.baseline = baseline
        self.candidate = candidate
        self.config = config or CanaryConfig()
        problems = self.config.problems()
        if problems:
            raise ValueError("; ".join(problems))
        self.validate = validate
        self.rollout = None if state is None else ActivePolicyWatch(state)
        self._pool = ThreadPoolExecutor(max_workers=self.config.max_workers, thread_name_prefix="canary")
        self.stats = {"calls": 0, CANDIDATE: 0, BASELINE: 0, "fallbacks": 0}
        self._stats_lock = threading.Lock()  # calls come from the agent's threads; += is not atomic

    def _count(self, *keys: str) -> None:
        with self._stats_lock:
            for k in keys:
                self.stats[k] += 1

    def close(self) -> None:
        """Stop accepting candidate calls; running ones finish in the background."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def arm_for(self, session_id: str) -> tuple[str, float]:
        """The arm of a session and its bucket."""
        arm, bucket, _ = self._route(session_id)
        return arm, bucket

    def _route(self, session_id: str) -> tuple[str, float, str]:
        """The arm, the bucket and why: the rollout state first (promoted, rolled back), else the slice."""
        cfg = self.config
        bucket = slice_bucket(session_id, cfg.salt)
        if self.rollout is not None:
            forced, why = self.rollout.decide(cfg.baseline_policy, cfg.candidate_policy)
            if forced is not None:
                return forced, bucket, f"rollout: {why}"
        limit = min(cfg.fraction, cfg.max_fraction)  # a config edited after __init__ too
        arm = CANDIDATE if bucket < limit else BASELINE
        return arm, bucket, f"bucket {bucket:.4f} {'<' if arm == CANDIDATE else '>='} fraction {cfg.fraction}"

    def call(self, session_id: str, *args: Any, recorder: Any = None, **kwargs: Any) -> RouteResult:
        """Route one call of a session; never raises because of the candidate.

        Args:
            session_id: the agent session (run) id the slice is drawn on.
            *args: passed to the policy.
            recorder: the run's ``Recorder``; decisions and fallbacks are emitted there.
            **kwargs: passed to the policy.

        Returns:
            The output and how it was produced.
        """
        cfg = self.config
        arm, bucket, reason = self._route(session_id)
        self._count("calls", arm)
        policy = cfg.candidate_policy if arm == CANDIDATE else cfg.baseline_policy
        _emit(recorder, "orchestrator_transition",
              {"from_state": "route", "to_state": arm, "reason": reason},
              {"arm": arm, "policy": policy, "bucket": round(bucket, 6), "fraction": cfg.fraction,
               "salt": cfg.salt})
        _session_label(recorder, arm, policy, fallback=None)
        t0 = time.perf_counter()
        if arm == CANDIDATE:
            output, fallback = self._try_candidate(args, kwargs)
            if fallback is None:
                return RouteResult(output, arm, CANDIDATE, policy, None, _ms(t0), bucket)
            self._count("fallbacks")
            kind, message = fallback
            log.warning("canary fallback for session %s: %s (%s)", session_id, kind, message)
            _emit(recorder, "episode_error", {"kind": kind, "message": message[:2000], "recoverable": True},
                  {"fallback": kind, "policy": cfg.candidate_policy})
            _emit(recorder, "orchestrator_transition",
                  {"from_state": CANDIDATE, "to_state": BASELINE, "reason": f"fallback: {kind}"},
                  {"fallback": kind, "policy": cfg.baseline_policy})
            _session_label(recorder, arm, cfg.candidate_policy, fallback=kind)
            output = self.baseline(*args, **kwargs)
            return RouteResult(output, arm, BASELINE, cfg.baseline_policy, kind, _ms(t0), bucket)
        output = self.baseline(*args, **kwargs)
        return RouteResult(output, arm, BASELINE, policy, None, _ms(t0), bucket)

    def _try_candidate(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[str, str] | None]:
        """Run the candidate with the timeout; return (output, None) or (None, (kind, message))."""
        try:
            future = self._pool.submit(self.candidate, *args, **kwargs)
        except RuntimeError as exc:  # pool shut down
            return None, (type(exc).__name__, str(exc))
        try:
            output = future.result(timeout=self.config.timeout_s)
        except FutureTimeout:
            future.cancel()
            return None, (ErrorKind.TIMEOUT.value, f"candidate took longer than {self.config.timeout_s}s")
        except KeyboardInterrupt:  # the operator's Ctrl-C stops the agent, not just the candidate
            raise
        except BaseException as exc:  # noqa: BLE001 - fail-open is the point: SystemExit, CancelledError too
            return None, (type(exc).__name__, str(exc) or type(exc).__name__)
        verdict = self._check(output)
        if verdict is not None:
            return None, (ErrorKind.INVALID_OUTPUT.value, verdict)
        return output, None

    def _check(self, output: Any) -> str | None:
        """None when the output is valid, else why not (a validator that raises counts as invalid)."""
        if self.validate is None:
            return None if output is not None else "candidate returned None"
        try:
            ok = self.validate(output)
        except Exception as exc:  # noqa: BLE001
            return f"validator raised {type(exc).__name__}: {exc}"
        if ok is None or ok is True:
            return None
        return ok if isinstance(ok, str) else "candidate output failed validation"


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 3)


def _emit(recorder: Any, event_type: str, payload: dict[str, Any], label: dict[str, Any]) -> None:
    """Emit one routing event; the recorder itself fails open."""
    if recorder is None:
        return
    recorder.emit(event_type, role="orchestrator", payload=payload, labels={LABEL: label})


def _session_label(recorder: Any, arm: str, policy: str, fallback: str | None) -> None:
    """Keep the session-level ``canary`` label: arm, its policy and the fallbacks seen so far.

    Gates compare arms as assigned (intent to treat): a candidate session that fell back stays in
    the candidate arm, so fallbacks count against the candidate.
    """
    labels = getattr(recorder, "labels", None)
    if not isinstance(labels, dict):
        return
    cur = labels.setdefault(LABEL, {"arm": arm, "policy": policy, "fallbacks": 0, "fallback_kinds": []})
    cur.update(arm=arm, policy=policy)
    if fallback is not None:
        cur["fallbacks"] += 1
        cur["fallback_kinds"] = sorted(set(cur["fallback_kinds"]) | {fallback})
