"""``sigterm_as_interrupt``: SIGTERM and SIGHUP raise KeyboardInterrupt within the block (the command's cleanup
runs), the handlers before it come back after, and a signal the process ignores (``nohup``) stays ignored."""

from __future__ import annotations

import os
import signal

import pytest

from tracebridge.cli.app import sigterm_as_interrupt


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_interrupts_the_block_and_handlers_come_back(sig: signal.Signals) -> None:
    # a suite run under nohup ignores SIGHUP: this test is of a signal the process takes
    ignored = signal.signal(sig, signal.SIG_DFL) if signal.getsignal(sig) == signal.SIG_IGN else None
    try:
        before = signal.getsignal(sig)
        with pytest.raises(KeyboardInterrupt, match=sig.name), sigterm_as_interrupt():
            os.kill(os.getpid(), sig)
            signal.sigtimedwait([], 0.5)  # the handler runs here at the latest (signals reach the main thread)
        assert signal.getsignal(sig) == before
    finally:
        if ignored is not None:
            signal.signal(sig, ignored)


def test_an_ignored_hangup_stays_ignored() -> None:
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with sigterm_as_interrupt():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)  # nohup: the terminal closed; the command goes on
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, old)
