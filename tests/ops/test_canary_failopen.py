"""Canary fail-open beyond ``Exception`` (SystemExit, asyncio.CancelledError from the candidate) and the
router's counters under the agent's threads."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.ops.test_canary import CFG, _router, _sid


def _raises(exc: BaseException):
    def cand(x):
        raise exc
    return cand


@pytest.mark.parametrize("exc, kind", [(SystemExit(3), "SystemExit"), (asyncio.CancelledError(), "CancelledError"),
                                       (GeneratorExit(), "GeneratorExit")])
def test_a_candidate_raising_a_base_exception_falls_back_to_the_baseline(exc, kind):
    labels: dict = {}

    class Rec:
        def __init__(self):
            self.labels, self.events = labels, []

        def emit(self, event_type, **kw):
            self.events.append((event_type, kw["labels"]["canary"]))

    rec = Rec()
    with _router(_raises(exc)) as r:
        res = r.call(_sid("candidate", CFG), "q", recorder=rec)
    assert (res.output, res.served_by, res.fallback, res.arm) == ("base:q", "baseline", kind, "candidate")
    assert r.stats["fallbacks"] == 1
    assert ("episode_error", {"fallback": kind, "policy": "cand-v2"}) in rec.events
    assert labels["canary"]["fallbacks"] == 1 and labels["canary"]["fallback_kinds"] == [kind]


def test_a_keyboard_interrupt_in_the_candidate_still_stops_the_agent():
    with _router(_raises(KeyboardInterrupt())) as r, pytest.raises(KeyboardInterrupt):
        r.call(_sid("candidate", CFG), "q")


class _SlowDict(dict):
    """Reads yield the GIL, so an unlocked ``stats[k] += 1`` from two threads loses updates."""

    def __getitem__(self, k):
        v = super().__getitem__(k)
        time.sleep(0.0005)
        return v


def test_stats_of_a_router_shared_across_threads_lose_no_update():
    n_threads, per_thread = 8, 25
    with _router(lambda x: f"cand:{x}") as r:
        r.stats = _SlowDict(r.stats)
        sid = _sid("baseline", CFG)
        start = threading.Barrier(n_threads)

        def work():
            start.wait()
            for _ in range(per_thread):
                r.call(sid, "q")

        threads = [threading.Thread(target=work) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert r.stats["calls"] == r.stats["baseline"] == n_threads * per_thread
