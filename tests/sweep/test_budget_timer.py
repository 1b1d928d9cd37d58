"""``BudgetTimer`` sends its interrupt only once the Tune handler is in place and the loop has created
its trials (``ready``); the real Tune path is tests/cluster/test_resume_budget.py."""

from __future__ import annotations

import signal
import time

from tracebridge.sweep.budget import BudgetTimer, first_step


def test_the_budget_waits_for_the_handler_and_for_ready():
    got: list[int] = []
    step = first_step()
    with BudgetTimer(1e-6, poll_s=0.01, ready=lambda: step.done) as budget:
        time.sleep(0.1)  # the budget is long spent, but no handler yet: nothing sent (ours would swallow it)
        assert not budget.fired
        signal.signal(signal.SIGUSR1, lambda sig, frame: got.append(sig))  # what Tune does in fit()
        time.sleep(0.1)
        assert not budget.fired and got == []  # the handler is in place, Tune's first step not yet done
        step.on_step_end(iteration=1, trials=[])
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
    assert budget.fired and got == [signal.SIGUSR1]
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # ours replaced on exit by the one before


def test_no_budget_sends_nothing():
    with BudgetTimer(0) as budget:
        time.sleep(0.05)
    assert not budget.fired
