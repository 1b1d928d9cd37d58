"""Find OpenClaw transcripts: walk ``~/.openclaw`` / ``~/.clawdbot`` (or any given folder) for
``agents/<agent>/sessions/*.jsonl`` files of any agent, archived names included
(``<id>.jsonl.reset.<ts>``, ``.deleted.<ts>``, ``.bak``), lock and temp files skipped, and read
the ``sessions.json`` index of each sessions folder (session key, channel, chat type).
"""

from __future__ import annotations

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
_TRANSCRIPT = re.compile(r"\.jsonl(?:\.(?:reset|deleted)\.[^/]+|\.bak\d*)?$|\.jsonl?\.bak$")
_SKIP = re.compile(r"\.lock$|\.lock\.|\.tmp$|^\.")
_SKIP_DIRS = frozenset({".git", "node_modules", "__pycache__"})


@dataclass(frozen=True)
class Transcript:
    """One transcript file found by discovery."""

    path: Path
    agent: str | None
    archived: str | None  # reset | deleted | bak | None (live)
    index_entry: dict[str, Any] | None = None


def archive_kind(name: str) -> str | None:
    """``reset`` / ``deleted`` / ``bak`` for archived transcript names, None for live ones."""
    for kind in ("reset", "deleted"):
        if f".jsonl.{kind}." in name:
            return kind
    return "bak" if re.search(r"\.bak\d*$", name) else None


def is_transcript_name(name: str) -> bool:
    """Whether a file name is a transcript (``.jsonl``, archived or backup), not a lock, temp or
    hidden file."""
    return bool(_TRANSCRIPT.search(name)) and not _SKIP.search(name)


def agent_of(path: Path) -> str | None:
    """``<agent>`` of ``.../agents/<agent>/sessions/<file>``, else None."""
    parts = path.parts
    if len(parts) >= 4 and parts[-2] == "sessions" and parts[-4] == "agents":
        return parts[-3]
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
                out[entry["sessionId"]] = {**entry, "key": key}
    elif isinstance(items, list):
        for entry in items:
            if isinstance(entry, dict) and isinstance(entry.get("sessionId"), str):
                out[entry["sessionId"]] = {**entry, "key": entry.get("key") or entry.get("sessionKey")}
    return out


def _make(path: Path, index: dict[str, dict[str, Any]]) -> Transcript:
    sid = session_id_from_name(path.name)
    return Transcript(path, agent_of(path), archive_kind(path.name), index.get(sid))


def discover(paths: list[str | os.PathLike[str]] | None, problems: list[str]) -> list[Transcript]:
    """Every transcript under ``paths`` (default: the OpenClaw homes), sorted, each once.

    Args:
        paths: files or folders; an explicitly named file is taken whatever its name.
        problems: receives one line per unreadable index or missing path.
    """
    roots = [Path(p).expanduser() for p in (paths or DEFAULT_ROOTS)]
    found: dict[str, Transcript] = {}  # by absolute path (no symlink resolution: no extra syscalls)
    for root in roots:
        if root.is_file():
            if _SKIP.search(root.name):
                problems.append(f"{root}: lock or temp file, skipped")
                continue
            found.setdefault(os.path.abspath(root), _make(root, read_index(root.parent, problems)))
            continue
        if not root.is_dir():
            if paths:
                problems.append(f"{root}: no such file or folder")
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            names = sorted(n for n in filenames if is_transcript_name(n))
            if not names:
                continue
            index = read_index(Path(dirpath), problems)
            for name in names:
                p = Path(dirpath, name)
                found.setdefault(os.path.abspath(p), _make(p, index))
    return sorted(found.values(), key=lambda t: str(t.path))
