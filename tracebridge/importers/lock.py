"""The import lock: one import at a time into a trace root, per importer, naming the one that runs.

``<out>/.import/<importer>.lock`` is a ``FileLock`` with a holder note beside it (``ops.locks.run_lock``):
a second import into the same root is refused naming the running one's pid, host, start and command,
and an import that finds the note of one that died holding the lock (SIGKILL, power loss: the kernel
let the lock go) says on stderr that it took it over.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import Timeout

from tracebridge.ops.locks import run_lock


class ImportLocked(Timeout):
    """Another import into the same trace root holds the lock (the message names it); nothing was done.
    A ``filelock.Timeout``, as the import raised before the holder was named (``lock_file`` is the lock)."""

    def __init__(self, message: str) -> None:
        super().__init__(message.split(": ", 1)[0])
        self.message = message

    def __str__(self) -> str:
        return self.message


@contextmanager
def import_lock(root: Path, name: str, timeout: float) -> Iterator[None]:
    """Hold ``root/.import/<name>.lock`` for the block (waiting up to ``timeout`` s).

    Raises:
        ImportLocked: another import holds it; the message names the lock file and the holder.
    """
    lock = root / ".import" / f"{name}.lock"
    with run_lock(lock, f"another import into {root} is running", timeout, ImportLocked):
        yield
