"""Find OpenClaw transcripts: walk ``~/.openclaw`` / ``~/.clawdbot`` (or any given folder) for
``agents/<agent>/sessions/*.jsonl`` files of any agent, archived names included
(``<id>.jsonl.reset.<ts>``, ``.deleted.<ts>``, ``.bak``, ``.bak.<ts>``), lock and temp files
skipped, and read the ``sessions.json`` index of each sessions folder (session key, channel, chat
type). OpenClaw's other files there (``src/config/sessions/artifacts.ts``): ``*.trajectory.jsonl``
is a runtime trace, no transcript, and is skipped; a pre-compaction checkpoint
(``<id>.checkpoint.<uuid>.jsonl``) is a copy of the transcript taken before a compaction was
appended to it, skipped while the live ``<id>.jsonl`` beside it holds those rows (else imported as
that session), and so is the backup the session manager keeps of a transcript it repaired
(``<id>.jsonl.corrupt-<time>-<hex>.jsonl``); a zstd-compressed archive (``*.zst``) is listed as a problem: it cannot be read here. Agent
databases (``agents/<agent>/agent/openclaw-agent.sqlite``, where current OpenClaw keeps its
transcripts) are collected for ``sqlite_store``. TraceBridge's own output under a walked folder (a
trace root given as ``out``, any importer state folder ``.import/``, any run folder: one holding
``events.jsonl``, a name OpenClaw never gives a transcript) is no OpenClaw data and is not entered.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tracebridge.importers.openclaw.session import session_id_from_name

log = logging.getLogger(__name__)
DEFAULT_ROOTS = ("~/.openclaw", "~/.clawdbot")
# Where a home holds what discovery reads, for messages about a folder that holds none of it
KEPT_WHERE = "agents/<agent>/sessions/*.jsonl or agents/<agent>/agent/openclaw-agent.sqlite under its home"
_TRANSCRIPT = re.compile(r"\.jsonl(?:\.(?:reset|deleted|bak)\.[^/]+|\.bak\d*)?$|\.jsonl?\.bak$")
_SKIP = re.compile(r"\.lock$|\.lock\.|\.tmp$|^\.")
_TRAJECTORY = ".trajectory.jsonl"  # OpenClaw's runtime traces, no transcripts (artifacts.ts)
_CHECKPOINT = re.compile(r"\.checkpoint\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.jsonl$",
                         re.IGNORECASE)
# The session manager's backup of a transcript it could not read (no header first) before it rewrote
# it: ``<id>.jsonl.corrupt-<time>-<8 hex>.jsonl`` (``recoverCorruptSessionEntries``).
_CORRUPT = re.compile(r"\.jsonl\.corrupt-[^/]*\.jsonl$")
ZSTD_SUFFIX = ".zst"
DB_NAME = "openclaw-agent.sqlite"  # an agent's SQLite store (sqlite_store.py)
_SKIP_DIRS = frozenset({".git", ".import", "node_modules", "__pycache__"})  # .import: our importers' state
RUN_EVENTS = "events.jsonl"  # a TraceBridge run folder's events (schema v2), never an OpenClaw transcript


@dataclass(frozen=True)
class Transcript:
    """One transcript file found by discovery."""

    path: Path
    agent: str | None
    archived: str | None  # reset | deleted | bak | None (live)
    index_entry: dict[str, Any] | None = None
    origin: str | None = None  # where the rows really are, when ``path`` is a copy (an agent database's session)


def archive_kind(name: str) -> str | None:
    """``reset`` / ``deleted`` / ``bak`` / ``checkpoint`` / ``corrupt`` for archived transcript
    names, None for live ones."""
    if _CHECKPOINT.search(name):
        return "checkpoint"
    if ".jsonl.corrupt-" in name and _CORRUPT.search(name):
        return "corrupt"
    for kind in ("reset", "deleted", "bak"):
        if f".jsonl.{kind}." in name:
            return kind
    return "bak" if re.search(r"\.bak\d*$", name) else None


def is_transcript_name(name: str) -> bool:
    """Whether a file name is a transcript (``.jsonl``, archived or backup), not a lock, temp or
    hidden file or trajectory (a compressed archive is one: ``discover`` reports it)."""
    return bool(_TRANSCRIPT.search(name)) and not _SKIP.search(name) and not name.endswith(_TRAJECTORY)


def live_of_copy(name: str) -> str | None:
    """``<id>.jsonl`` for a copy OpenClaw keeps beside it: a pre-compaction checkpoint
    ``<id>.checkpoint.<uuid>.jsonl`` or the backup of a repaired transcript
    ``<id>.jsonl.corrupt-<time>-<hex>.jsonl``; else None."""
    hit = _CHECKPOINT.search(name) if ".checkpoint." in name else None
    if hit is None and ".jsonl.corrupt-" in name:
        hit = _CORRUPT.search(name)
    return name[:hit.start()] + ".jsonl" if hit else None


def agent_of(path: Path) -> str | None:
    """``<agent>`` of ``.../agents/<agent>/sessions/<file>``, else None."""
    return _folder_agent(path.parts[:-1])


def _folder_agent(parts: tuple[str, ...]) -> str | None:
    """``<agent>`` of the folder ``.../agents/<agent>/sessions`` (its ``parts``), else None."""
    if len(parts) >= 3 and parts[-1] == "sessions" and parts[-3] == "agents":
        return parts[-2]
    return None


def read_index(folder: Path, problems: list[str]) -> dict[str, dict[str, Any]]:
    """``sessions.json`` of a folder as session id → entry (with its ``key``); {} if absent."""
    path = folder / "sessions.json"
    if not path.is_file():
        return {}
    try:
        raw = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        problems.append(f"{path}: unreadable sessions index: {exc}")
        return {}
    items = raw.get("sessions", raw) if isinstance(raw, dict) else {}
    out: dict[str, dict[str, Any]] = {}
    if isinstance(items, dict):
        for key, entry in items.items():
            if isinstance(entry, dict) and isinstance(entry.get("sessionId"), str):
                _index(out, {**entry, "key": key})
    elif isinstance(items, list):
        for entry in items:
            if isinstance(entry, dict) and isinstance(entry.get("sessionId"), str):
                _index(out, {**entry, "key": entry.get("key") or entry.get("sessionKey")})
    return out


def _index(out: dict[str, dict[str, Any]], entry: dict[str, Any]) -> None:
    """File ``entry`` under its session id and, when its ``sessionFile`` has another name (a forum
    topic's ``<id>-topic-<topic>.jsonl``, paths.ts), under that name's id too."""
    out[entry["sessionId"]] = entry
    file = entry.get("sessionFile")
    if isinstance(file, str) and file.strip() and not file.startswith("sqlite:"):  # not a database marker
        out.setdefault(session_id_from_name(os.path.basename(file.strip())), entry)


def _zstd_problem(path: Path) -> str:
    return (f"{path}: zstd-compressed archive, not read (no zstd decoder here); "
            f"decompress it (zstd -d) and import the .jsonl")


def _make(path: Path, index: dict[str, dict[str, Any]], agent: str | None) -> Transcript:
    name = path.name
    return Transcript(path, agent, archive_kind(name), index.get(session_id_from_name(name)))


def not_utf8(path: str) -> str | None:
    """The problem line of a path whose name is not UTF-8 (Python keeps such bytes as surrogates, which
    no state, quarantine or report line can hold: the import stopped with a traceback), else None."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return (f"{ascii(os.fsencode(path))[2:-1]}: name is not UTF-8, not read (a run, its state and its "
                f"quarantine lines are named after it); rename it to UTF-8 to import it")
    return None


def not_there(path: str | os.PathLike[str]) -> str:
    """Why a path that is neither file nor folder cannot be read: ``symlink loop`` (a link that leads
    back to itself: ``exists()`` is False for it too) or ``no such file or folder``."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop"
    return "no such file or folder"


def _ours(dirpath: str, name: str, out: str | None) -> bool:
    """Whether subfolder ``name`` of ``dirpath`` is TraceBridge output: the trace root ``out``, an
    importer state folder or a run folder."""
    path = os.path.join(dirpath, name)
    return (name in _SKIP_DIRS or os.path.abspath(path) == out
            or os.path.isfile(os.path.join(path, RUN_EVENTS)))


def discover(paths: list[str | os.PathLike[str]] | None, problems: list[str],
             stores: list[Path] | None = None, out: str | os.PathLike[str] | None = None,
             empty: list[str] | None = None) -> list[Transcript]:
    """Every transcript under ``paths`` (default: the OpenClaw homes), sorted, each once.

    Args:
        paths: files or folders; an explicitly named file is taken whatever its name.
        problems: receives one line per unreadable index, missing path or compressed archive.
        stores: receives each agent database found (``openclaw-agent.sqlite``); without it, a
            database named explicitly is listed as a problem.
        out: the trace root being written, not entered where it lies under a walked folder (nor is
            any other trace root's run or state folder).
        empty: receives each of ``paths`` (as given) under which the walk saw no transcript, no
            agent database and no problem, so a caller can refuse a wrong folder without a second walk.
    """
    roots = [Path(p).expanduser() for p in (paths or DEFAULT_ROOTS)]
    found: dict[str, Transcript] = {}  # by absolute path (no symlink resolution: no extra syscalls)
    own = os.path.abspath(Path(out).expanduser()) if out is not None else None
    for given, root in zip(paths or DEFAULT_ROOTS, roots, strict=True):
        if bad := not_utf8(str(root)):
            problems.append(bad)
            seen = True
        elif root.is_file():
            seen = _take_file(root, found, problems, stores)
        elif root.is_dir():
            seen = _walk(root, found, problems, stores, own)
        else:
            if paths:
                problems.append(f"{root}: {not_there(root)}")
            seen = bool(paths)
        if not seen and empty is not None:
            empty.append(str(given))
    return sorted(found.values(), key=lambda t: str(t.path))


def _take_file(root: Path, found: dict[str, Transcript], problems: list[str], stores: list[Path] | None) -> bool:
    """Take an explicitly named file: a transcript whatever its name, an agent database, or a problem
    (a lock or temp file, a compressed archive). Always True: a named file is something seen."""
    if _SKIP.search(root.name):
        problems.append(f"{root}: lock or temp file, skipped")
    elif root.name.endswith(ZSTD_SUFFIX):
        problems.append(_zstd_problem(root))
    elif root.name == DB_NAME:
        if stores is None:
            problems.append(f"{root}: an OpenClaw agent database, read by `tracebridge import openclaw`")
        else:
            stores.append(root)
    else:
        found.setdefault(os.path.abspath(root), _make(root, read_index(root.parent, problems), agent_of(root)))
    return True


def _walk(root: Path, found: dict[str, Transcript], problems: list[str], stores: list[Path] | None,
          own: str | None) -> bool:
    """Add the transcripts, agent databases and problems under folder ``root``; whether there was any
    (one already found under another given path counts: it is there)."""
    before, seen = len(problems), False
    for dirpath, dirnames, filenames in os.walk(root):
        bad = [n for n in (*dirnames, *(f for f in filenames if is_transcript_name(f))) if not_utf8(n)]
        problems += [not_utf8(os.path.join(dirpath, n)) or "" for n in sorted(bad)]
        dirnames[:] = sorted(d for d in dirnames if d not in bad and not _ours(dirpath, d, own))
        filenames = [n for n in filenames if n not in bad]
        if DB_NAME in filenames:
            seen = True
            if stores is not None:
                stores.append(Path(dirpath, DB_NAME))
        names = sorted(n for n in filenames if is_transcript_name(n))
        if not names:
            continue
        seen = True
        present = set(names)  # a checkpoint or backup copy whose live transcript is here adds nothing
        names = [n for n in names if live_of_copy(n) not in present]
        # Per folder, not per file: its Path, absolute path and agent (a transcript's Path is the
        # folder's joined with a plain name: discovering 2000 transcripts took 25 ms, now 20 ms).
        folder, base = Path(dirpath), os.path.abspath(dirpath)
        index, agent = read_index(folder, problems), _folder_agent(folder.parts)
        for name in names:
            p = folder / name
            if name.endswith(ZSTD_SUFFIX):
                problems.append(_zstd_problem(p))
                continue
            found.setdefault(os.path.join(base, name), _make(p, index, agent))
    return seen or len(problems) > before


def nothing_found(paths: list[str | os.PathLike[str]] | None) -> str:
    """The report line of an import that found no transcript and no agent database to read."""
    where = ", ".join(str(p) for p in (paths or DEFAULT_ROOTS))
    return f"no OpenClaw transcript or agent database under {where}: nothing to import (OpenClaw keeps them as {KEPT_WHERE})"
