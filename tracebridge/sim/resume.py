"""Resuming a collection: the ledger a collection keeps in its trace root, and what a rerun into
that root skips, sets aside and runs again.

Each worker appends one ``started`` line (the episode's ``source.ref`` and the run id it is about
to write) before an episode and one ``done`` line (its ``EpisodeResult``) once the run is closed,
to ``<root>/.collect.ledger.jsonl``. A rerun after a kill (same config) takes every episode with a
``done`` line whose run is complete as collected, moves the runs of episodes started but not done
(incomplete, or complete but killed before their ``done`` line) to ``<root>/.collect.interrupted/``
(readers skip hidden folders) and runs those episodes again: each episode ends up with exactly one
run in the root. Once a pass has collected an episode again (its ``done`` line written, its run
complete), the runs of that episode set aside by this or an earlier pass are superseded and removed
(``prune_aside``); those of episodes not collected since stay, and the summary lists them. The random seeds a pass drew from OS entropy are kept in
``<root>/.collect.seeds.json``, so a rerun collects the same matrix. Each line holds a hash of what
makes the episode (its spec and its mix's roles): a rerun with other settings (a changed skill, failure
profile or step limit under the same names) is refused rather than mixed into the root.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson

from tracebridge.schema.canonical import sha256_json
from tracebridge.sim.episode import EpisodeResult, EpisodeSpec

LEDGER = ".collect.ledger.jsonl"
ASIDE = ".collect.interrupted"
SEEDS = ".collect.seeds.json"
log = logging.getLogger(__name__)
_RESULT_FIELDS = {f.name for f in fields(EpisodeResult)}


class SettingsChanged(ValueError):
    """Episodes of the root's ledger were collected with other settings than the rerun's (the message says which)."""


def episode_hash(spec: EpisodeSpec, mix: Any) -> str:
    """A hash of what makes an episode's content: its spec and its policy mix (a dataclass)."""
    return sha256_json({"spec": asdict(spec), "mix": asdict(mix)})[:16]


def append_ledger(root: str | Path, entry: dict[str, Any]) -> None:
    """Append one ledger line with a single ``O_APPEND`` write (lines of concurrent workers never interleave)."""
    fd = os.open(Path(root) / LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, orjson.dumps(entry) + b"\n")
    finally:
        os.close(fd)


Done = dict[str, tuple[str, EpisodeResult, str | None]]  # ref → (run id, result, episode hash)


def read_ledger(root: str | Path) -> tuple[dict[str, str], Done, int]:
    """The ledger of ``root``: ``started`` (run id → ref), ``done`` (ref → (run id, result, episode hash))
    and the number of lines that could not be read (a line torn by a kill: its episode runs again). An episode
    done twice (a pass ran it again: the run its first ``done`` line names had lost its session.json) is the
    run of its last ``done`` line."""
    started: dict[str, str] = {}
    done: Done = {}
    bad = 0
    path = Path(root) / LEDGER
    if not path.is_file():
        return started, done, bad
    for raw in path.read_bytes().splitlines():
        try:
            e = orjson.loads(raw)
            if e["state"] == "started":
                started[str(e["run_id"])] = str(e["ref"])
            elif e["state"] == "done":
                done[str(e["ref"])] = (str(e["run_id"]), EpisodeResult(**{k: e["result"][k] for k in _RESULT_FIELDS}),
                                       e.get("spec"))
            else:
                bad += 1
        except (ValueError, KeyError, TypeError, AttributeError):
            bad += 1
    return started, done, bad


def has_ledger(root: str | Path) -> bool:
    """Whether ``root`` was written by a collection that keeps a ledger (one that can be resumed)."""
    return (Path(root) / LEDGER).is_file()


@dataclass
class ResumeState:
    """What a rerun found in its root: the episodes already collected and the runs it set aside."""

    done: dict[str, EpisodeResult] = field(default_factory=dict)  # ref → result
    set_aside: list[str] = field(default_factory=list)  # run dirs moved under ASIDE
    unreadable_lines: int = 0


def check_settings(done: Done, expected: dict[str, str], root: str | Path) -> None:
    """Refuse a rerun whose episodes (ref → ``episode_hash``) the ledger's were collected otherwise.

    Raises:
        SettingsChanged: an episode of the same name was collected with other settings.
    """
    changed = sorted(ref for ref, h in expected.items() if ref in done and done[ref][2] not in (None, h))
    if changed:
        raise SettingsChanged(
            f"--out {root}: {len(changed)} episode(s) of this collection (e.g. {changed[0]}) were collected with other "
            "settings (a mix's skill or roles, a failure profile, max_steps, max_attempts or capture changed since); "
            "resuming would mix the two in one root. Rerun with the interrupted collection's config, or use a new --out")


def prepare_resume(root: str | Path) -> ResumeState:
    """Read the ledger of ``root`` and move the runs of interrupted episodes under ``ASIDE``.

    Returns:
        The episodes already collected (their run complete and their ``done`` line written) and
        the folders set aside (their episodes run again).
    """
    root = Path(root)
    started, done, bad = read_ledger(root)
    st = ResumeState(unreadable_lines=bad)
    for ref, (run_id, result, _) in done.items():
        if (root / run_id / "session.json").is_file():
            st.done[ref] = result
    kept = {done[ref][0] for ref in st.done}
    for run_id in sorted(started):
        d = root / run_id
        if run_id in kept or not d.is_dir():
            continue
        aside = root / ASIDE
        aside.mkdir(exist_ok=True)
        os.replace(d, aside / run_id)
        st.set_aside.append(str(aside / run_id))
    return st


def prune_aside(root: str | Path) -> tuple[list[str], list[str]]:
    """Remove the runs under ``<root>/.collect.interrupted/`` whose episode a later pass collected (a ``done``
    line naming another run, which is complete): they are superseded. The others stay: an episode not
    collected since (it failed to start, or belongs to another collection's matrix), or a folder the ledger
    does not name, or one that could not be removed (logged; the collection stands). The folder itself goes
    once it is empty.

    Returns:
        ``(removed, left)``: the run folders removed and those left, each sorted.
    """
    aside = Path(root) / ASIDE
    if not aside.is_dir():
        return [], []
    started, done, _ = read_ledger(root)
    removed, left = [], []
    for d in sorted(aside.iterdir()):
        ref = started.get(d.name)
        again = done.get(ref) if ref is not None else None
        if again is not None and again[0] != d.name and (Path(root) / again[0] / "session.json").is_file():
            try:
                if d.is_dir() and not d.is_symlink():
                    shutil.rmtree(d)
                else:
                    d.unlink()
            except OSError as exc:  # after the whole pass: a folder left is no reason to lose its summary
                log.warning("%s: superseded by run %s, but not removed: %s", d, again[0], exc)
                left.append(str(d))
                continue
            removed.append(str(d))
        else:
            left.append(str(d))
    if not left:
        aside.rmdir()
    return removed, left


def _seeds_file(root: str | Path) -> dict[str, Any]:
    try:
        d = orjson.loads((Path(root) / SEEDS).read_bytes())
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def saved_random_seeds(root: str | Path, collection: str, n: int) -> list[int] | None:
    """The random seeds an earlier pass of ``collection`` drew into ``root`` (None: none saved, or
    another number of them)."""
    seeds = _seeds_file(root).get(collection)
    if not isinstance(seeds, list) or len(seeds) != n or not all(isinstance(s, int) for s in seeds):
        return None
    return seeds


def save_random_seeds(root: str | Path, collection: str, seeds: list[int]) -> None:
    """Keep the random seeds of this pass, by collection name (written atomically), for a rerun to
    collect the same matrix."""
    path = Path(root) / SEEDS
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps({**_seeds_file(root), collection: seeds}))
    os.replace(tmp, path)
