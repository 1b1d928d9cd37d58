"""Runs open in this process, and what a fork and the interpreter's exit do to them.

A process forked while a run is open does not write to it: the parent owns the run, and a child
writing the same ids (and its own ``session.json``) would corrupt it. After a fork, the child
disowns every run the parent had open: its emits are dropped and counted in the child, and it
writes no ``session.json``.

A run still open when the interpreter exits (the agent never called ``close()`` and no ``with`` block
ended it) is closed then, with a warning that names it: without its ``session.json`` the run was
incomplete for good, failed ``tracebridge validate`` as abandoned an hour later, and the export
quarantined it, though every event was on disk. When an unhandled exception ended the program, the run
records it as a ``with`` block would (``episode_error`` and a failed ``episode_end``, unless the agent
recorded its end). A SIGKILL, or a signal without a Python handler (SIGTERM's default), ends the
process without exit handlers: such a run stays incomplete.

A recorder pickled into another process (an agent, or a tool function's arguments, handed to a
``multiprocessing`` process under ``spawn``/``forkserver``, Python 3.14's default on Linux and macOS's;
a ``ProcessPoolExecutor`` task) arrives there disowned, as in a forked child: it used to stop the agent
with ``TypeError: cannot pickle '_thread.RLock' object``. Unpickled in the process that opened it (a
``copy.deepcopy`` of an agent that holds it), it is the recorder itself, as a logger is.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracebridge.capture.recorder import Recorder

log = logging.getLogger(__name__)
# A recorder adds itself on open, discards itself on close. Held, not weakly: an open run the agent dropped
# without closing is closed at exit, not lost with the object.
OPEN: set[Recorder] = set()
_EXIT_LOCK_WAIT_S = 2.0  # a daemon thread stopped mid-emit at exit may hold a recorder's lock for good


def disown(rec: Recorder) -> None:
    """In a process forked while ``rec`` was open: give up the parent's run without writing to it. Later
    emits are dropped and counted; no ``session.json``."""
    rec._lock = threading.RLock()  # another thread of the parent may have held it at the fork
    rec._disowned = True  # open() says why it cannot open the run
    rec._emitting, rec._close_after_emit = 0, None  # that thread's emit does not go on here
    rec._closed = True
    rec._lineage.close()
    rec._not_open = "the run belongs to the process that opened it (this one was forked from it)"
    writer, rec._writer = rec._writer, None
    if writer is not None:
        writer.fsync_on_close = False  # the parent's file: nothing of the child's to make durable
        writer.close()


_PICKLED: weakref.WeakValueDictionary[int, Recorder] = weakref.WeakValueDictionary()  # id -> recorder pickled here


def reduce_recorder(rec: Recorder) -> tuple[Any, tuple[Any, ...]]:
    """``Recorder.__reduce__``: what another process needs of ``rec`` to stand in for it (nothing it could
    write with), and where to find ``rec`` itself when unpickled in this process."""
    _PICKLED[id(rec)] = rec
    blocks = {k: getattr(rec, k).model_dump() for k in ("goal", "model_stack", "runtime_config", "source")}
    return unpickle_recorder, (os.getpid(), id(rec), str(rec.run_dir), rec.run_id, blocks, rec.strict, rec.step,
                               rec._lineage.seq, rec._writer is not None or rec._closed)


def unpickle_recorder(pid: int, key: int, run_dir: str, run_id: str, blocks: dict[str, Any], strict: bool, step: int,
                      seq: int, opened: bool = True) -> Recorder:
    """The recorder ``reduce_recorder`` pickled: itself in the process that pickled it, else a disowned stand-in
    (its emits dropped and counted there, its ids going on from the run's, no ``session.json``)."""
    from tracebridge.capture.recorder import Recorder

    if pid == os.getpid() and (rec := _PICKLED.get(key)) is not None and rec.run_id == run_id:
        return rec
    rec = Recorder(os.path.dirname(run_dir), run_id=run_id, strict=strict, **blocks)
    rec.step, rec._lineage.seq = step, seq
    disown(rec)
    rec._not_open = (f"the run belongs to process {pid}, which " + ("opened it" if opened else "made the recorder") +
                     f" (this recorder was pickled into process {os.getpid()}: record there, or make a Recorder in "
                     "this process)")
    return rec


def _disown_after_fork() -> None:
    for rec in list(OPEN):
        disown(rec)
    OPEN.clear()


def _fatal_exception() -> BaseException | None:
    """The unhandled exception that ended the program, if one did: ``sys.last_value``, set when its traceback was
    printed. An interactive session (the REPL, IPython/Jupyter) sets it for every error it shows and goes on."""
    import builtins

    if hasattr(sys, "ps1") or sys.flags.interactive or hasattr(builtins, "get_ipython"):
        return None
    return getattr(sys, "last_value", None)


def close_at_exit() -> None:
    """Close every run still open (``atexit``): as a ``with`` block leaving through the exception that ended
    the program (``sys.last_value``), if one did, else with ``close()``. Never raises: the exit goes on."""
    exc = _fatal_exception()
    for rec in list(OPEN):
        if not rec._lock.acquire(timeout=_EXIT_LOCK_WAIT_S):
            log.warning("run %s was still open at interpreter exit and another thread is stuck in an emit: left "
                        "without session.json (incomplete)", rec.run_dir)
            continue
        try:
            log.warning("run %s was still open at interpreter exit (no close() and no `with` block ended it): "
                        "closing it now%s", rec.run_dir, f", recording the {type(exc).__name__} that ended the program"
                        if exc is not None and rec._end is None else "")
            if exc is not None:
                rec.__exit__(type(exc), exc, exc.__traceback__)
            else:
                rec.close()
        except Exception as err:  # noqa: BLE001 - a strict recorder raises; the exit must go on
            log.warning("run %s could not be closed at interpreter exit: %s", rec.run_dir, err)
        finally:
            rec._lock.release()


os.register_at_fork(after_in_child=_disown_after_fork)
atexit.register(close_at_exit)
