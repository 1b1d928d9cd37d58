"""The cycles of the 3-day review's window (``tracebridge.ops.review``): each cycle folder with its manifest,
its bundle's problems, and whether it is still running.

A cycle folder without ``manifest.json`` is either a crashed cycle or the one the shadow cycle is writing
now (it writes the manifest last). The cycle names its folder in the holder note of the work dir's cycle
lock (``tracebridge.ops.locks``); a folder named there by a live holder is ``running``: the review leaves it
out of every criterion and says so, instead of failing ``cycles`` with an unfinished cycle.
"""

from __future__ import annotations

import datetime as dt
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracebridge.ops.artifacts import MANIFEST, list_cycles, read_manifest, verify_bundle
from tracebridge.ops.cycle import SKIPPED_BY_CONFIG
from tracebridge.ops.locks import read_holder
from tracebridge.pool_workers import pid_alive


@dataclass
class Cycle:
    """One cycle folder in the review's window: its manifest (None when it has none) and bundle problems;
    ``running`` when the shadow cycle holding the work dir's lock is still writing it."""

    cycle_id: str
    at: dt.datetime
    path: Path
    manifest: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    running: bool = False

    @property
    def ok(self) -> bool:
        """Whether the cycle succeeded: a manifest with ``status: ok`` and a bundle that
        verifies."""
        return self.manifest is not None and self.manifest.get("status") == "ok" and not self.problems

    @property
    def crashed(self) -> bool:
        """No ``manifest.json`` at all and not running: the cycle died before its end (a damaged one is
        not a crash)."""
        return not self.running and not (self.path / MANIFEST).exists()

    @property
    def sound(self) -> bool:
        """A readable manifest and a bundle that verifies: its figures can be used, ok or not."""
        return self.manifest is not None and not self.problems

    def step(self, name: str) -> str:
        """The status of the manifest's step ``name`` (``absent`` when it has none)."""
        return ((self.manifest or {}).get("steps", {}).get(name) or {}).get("status", "absent")

    def skip_reason(self, name: str) -> str:
        """Why the manifest's step ``name`` was skipped, with the config key that turned it off."""
        reason = (((self.manifest or {}).get("steps") or {}).get(name) or {}).get("reason") or "skipped"
        sh = ((self.manifest or {}).get("config") or {}).get("shadow") or {}
        sh = sh if isinstance(sh, dict) else {}
        skip = sh.get("skip") if isinstance(sh.get("skip"), list) else []  # a damaged config block: no traceback
        keys = {f"shadow.skip has {name}": name in skip,
                "shadow.optimize.mode=off": name == "optimize" and (sh.get("optimize") or {}).get("mode") == "off",
                "shadow.runtime_hook=false": name == "runtime_hook" and sh.get("runtime_hook") is False}
        on = [k for k, v in keys.items() if v]
        return reason + (f": {', '.join(on)}" if on else "")

    def turned_off(self, name: str) -> bool:
        """Whether an ok cycle skipped step ``name``: only the config (or a step it turned off) skips one
        in a cycle where no step failed."""
        return self.ok and self.step(name) == "skipped"

    def config_off(self, name: str) -> bool:
        """Whether the config itself turned step ``name`` off (its manifest says so), in a failed cycle too."""
        return self.sound and self.step(name) == "skipped" and \
            (self.manifest or {})["steps"][name].get("reason") == SKIPPED_BY_CONFIG

    def why_not_ok(self) -> str:
        """Why the cycle is not ok: its unusable manifest or bundle, or the steps that did not end ok."""
        if self.manifest is None or self.problems:
            return _first(self.problems)
        steps = self.manifest.get("steps") or {}
        failed = [n for n, r in steps.items() if r.get("status") == "failed"]  # skips that follow are implied
        off = [n for n, r in steps.items() if r.get("status") == "skipped" and r.get("reason") == SKIPPED_BY_CONFIG]
        why = ([f"{', '.join(failed)} failed"] if failed else []) + ([f"{', '.join(off)} {SKIPPED_BY_CONFIG}"] if off else [])
        return f"{self.manifest.get('status')}: " + ("; ".join(why) or "no step failed")


def load_cycles(artifacts_dir: str | Path, start: dt.datetime, end: dt.datetime,
                lock: Path | None = None) -> list[Cycle]:
    """Cycles whose timestamp is in (start, end], with their manifest and bundle problems; with the cycle
    ``lock`` (shadow.work_dir/.shadow-cycle.lock), the folder its live holder is writing is ``running``."""
    live = running_bundle(lock) if lock is not None else None
    out = []
    for at, path in list_cycles(artifacts_dir):
        if start < at <= end:
            running = live is not None and not (path / MANIFEST).exists() and path.resolve() == live
            out.append(Cycle(path.name, at, path, read_manifest(path), [] if running else verify_bundle(path),
                             running))
    return out


def running_bundle(lock: Path) -> Path | None:
    """The cycle folder the live holder of the cycle ``lock`` is writing (its holder note names it), else None.

    The note outlives a holder killed with SIGKILL (until the next cycle takes the lock over), so the holder
    must be alive: its pid on this host; a holder on another host (a shared work dir) is taken as alive.
    Nothing here takes the lock: a cycle starting now must not find it held by the review.
    """
    note = read_holder(lock)
    if not note or not isinstance(note.get("bundle"), str):
        return None
    if note.get("host") == socket.gethostname() and not pid_alive(note.get("pid")):
        return None
    return Path(note["bundle"]).resolve()


def _first(problems: list[str]) -> str:
    """Why a cycle has no usable manifest (missing, not JSON, or not shaped like one)."""
    return problems[0] if problems else "no manifest"
