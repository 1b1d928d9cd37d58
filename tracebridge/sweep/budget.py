"""``budget.max_hours`` on the Tune run, as an interruption rather than Tune's ``time_budget_s``.

Tune's time budget *terminates* the trials it stops: the experiment state marks them finished, so
``Tuner.restore(resume_unfinished=True)`` never runs them again, and it pickles the budget's stopper
(start time included) into that state, so every resume stops again at once, whatever budget the
resume was given. A sweep stopped by its budget could then never be finished. Interrupting the run
instead (Tune's own SIGUSR1 handler, the same path as ``tracebridge stop``'s SIGINT) saves the state
with the unfinished trials unfinished: the next ``submit --resume`` continues them from their last
checkpoint under the budget it was submitted with.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

log = logging.getLogger(__name__)


def _pending(signum: int, frame: object) -> None:
    """Holds SIGUSR1 until Tune installs its handler (the default action would kill the driver)."""


class BudgetTimer:
    """Interrupts the Tune run of this (main) thread after ``hours`` (0 = never); ``fired`` says it did.

    Use around ``Tuner.fit()``: the signal is sent only once Tune's handler has replaced ours, so it
    never kills the driver nor gets lost before ``fit`` starts listening, and once ``ready()`` says so
    (``first_step().done``: Tune's first step has created the grid's trials; interrupted before it, a
    run saves no trial at all and reports none).
    """

    def __init__(self, hours: float, poll_s: float = 0.2, ready: Callable[[], bool] = lambda: True) -> None:
        self.seconds, self.poll_s, self.fired, self.ready = hours * 3600, poll_s, False, ready
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._old: object = None

    def __enter__(self) -> Self:
        if self.seconds > 0:
            # raises ValueError outside the main thread, where Tune would not listen either
            self._old = signal.signal(signal.SIGUSR1, _pending)
            self._thread = threading.Thread(target=self._run, name="budget-timer", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        if self._done.wait(self.seconds):
            return
        while not self._done.is_set():
            if signal.getsignal(signal.SIGUSR1) is not _pending and self.ready():  # Tune's handler is in place
                self.fired = True
                log.warning("budget.max_hours=%g reached: interrupting the Tune run (its state is saved; "
                            "`tracebridge submit ... --resume` continues the unfinished trials)", self.seconds / 3600)
                os.kill(os.getpid(), signal.SIGUSR1)
                return
            self._done.wait(self.poll_s)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
            signal.signal(signal.SIGUSR1, self._old)  # type: ignore[arg-type]


def first_step() -> Any:
    """A Tune callback whose ``done`` turns true at the end of the Tune loop's first step, when the grid
    generator has created the trials it may (all of them, or ``budget.max_concurrent``). A plain flag, not
    an Event: Tune pickles the callbacks with the Tuner."""
    from ray.tune import Callback

    class FirstStep(Callback):
        def __init__(self) -> None:
            self.done = False

        def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
            self.done = True

    return FirstStep()
