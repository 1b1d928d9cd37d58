"""How the shadow retention removes what ``tracebridge.ops.retention`` planned, without holding its locks
for the removal.

A prune reads the promotion history (and the cycle folders) under the policy lock and the cycle lock. Removing
the folders it planned (export bundles and model weights: GBs on a real host) took minutes, and both locks were
held all that time: a ``tracebridge promote`` or ``rollback`` waited its 30 s and failed with "another
promote/rollback holds the lock", and a shadow cycle started meanwhile exited 3 (the day's cycle lost). Now,
still under the locks, ``detach`` renames each planned folder aside in its own folder (``.pruning-<pid>-<name>``:
one ``rename``, milliseconds, so no promotion can name it after the plan was read), and ``apply_prune`` sizes and
removes the renamed folders after the locks are let go. A prune killed while removing leaves its renamed
folders behind: ``leftover_items`` lists those of a process that is gone, and the next prune removes them.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from tracebridge.pool_workers import pid_alive

log = logging.getLogger(__name__)
TRASH = ".pruning-"  # <folder>/.pruning-<pid>-<name>: a planned folder moved aside for removal


def tree_bytes(path: Path) -> int:
    """Bytes that removing ``path`` frees: a file hard-linked several times under it counts once, one
    also linked from outside it not at all; symlinks counted, never followed; 0 when it is gone."""
    inodes: dict[tuple[int, int], list[int]] = {}  # (device, inode) -> [links under path, size, links]
    for root, dirs, files in os.walk(path):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            inodes.setdefault((st.st_dev, st.st_ino), [0, st.st_size, st.st_nlink])[0] += 1
    return sum(size for seen, size, links in inodes.values() if seen >= links)


def _rmtree(path: Path) -> list[str]:
    """Remove ``path`` as far as possible; return the errors (never raises)."""
    errors: list[str] = []
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=lambda _f, p, exc: errors.append(f"{p}: {exc}"))
    else:
        shutil.rmtree(path, onerror=lambda _f, p, info: errors.append(f"{p}: {info[1]}"))
    return errors


def leftover_items(folders: list[Path]) -> list[tuple[str, str, str]]:
    """``(path, kind, reason)`` of the folders a prune renamed aside in ``folders`` and did not remove, its process
    gone (killed while removing); those of a prune still removing them are left to it."""
    out = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            pid = p.name[len(TRASH):].partition("-")[0]
            if p.name.startswith(TRASH) and p.is_dir() and not p.is_symlink() and pid.isdigit() \
                    and (int(pid) == os.getpid() or not pid_alive(int(pid))):
                out.append((str(p), "interrupted prune", f"moved aside by prune pid {pid}, which stopped before removing it"))
    return out


def detach(rep: Any) -> None:
    """Rename every planned folder of ``rep`` aside (the caller holds the locks); one that cannot be renamed
    keeps the error and is not removed."""
    for it in rep.items:
        p = Path(it.path)
        if p.name.startswith(TRASH):  # already aside (an interrupted prune's)
            rep.moved[it.path] = it.path
            continue
        aside = p.with_name(f"{TRASH}{os.getpid()}-{p.name}")
        try:
            os.rename(p, aside)
        except OSError as exc:
            it.error = f"{p}: cannot move it aside for removal: {exc}"
            log.warning("retention: %s", it.error)
            continue
        rep.moved[it.path] = str(aside)


def apply_prune(rep: Any) -> Any:
    """Size every item, then (unless ``rep.dry_run``) remove it: the folder ``detach`` moved it to (an item it
    could not move stays, with its error); an item that cannot be wholly removed keeps its first error and
    counts only the bytes that did go."""
    for it in rep.items:
        p = Path(rep.moved.get(it.path, it.path))
        it.bytes = tree_bytes(p)
        if rep.dry_run or it.path not in rep.moved:  # one never moved aside is not removed here, outside the locks
            continue
        errors = _rmtree(p)
        it.freed = it.bytes - (tree_bytes(p) if p.exists() else 0)
        it.removed = not p.exists()
        if errors or not it.removed:
            it.error = (errors or [f"{p}: still there"])[0] + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else "")
            if str(p) != it.path and not os.path.lexists(it.path):  # what is left goes back where the operator looks
                try:
                    os.rename(p, it.path)
                    it.error = it.error.replace(str(p), it.path)
                except OSError:
                    pass
            log.warning("retention: could not remove %s: %s", it.path, it.error)
        else:
            log.info("retention: removed %s %s (%d bytes): %s", it.kind, it.path, it.bytes, it.reason)
    return rep
