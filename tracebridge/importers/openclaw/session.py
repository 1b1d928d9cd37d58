"""Run ids and ``session.json`` for imported OpenClaw sessions (pure).

The run id is derived from the session id (the header's ``id``, else the file name), so the same
session always lands in the same run directory, whatever file or folder it is read from.
"""

from __future__ import annotations

import hashlib
import re
from io import BufferedReader
from typing import Any

import orjson

from tracebridge.capture.blocks import goal_hash
from tracebridge.importers.openclaw.mapping import EPOCH, SessionMapper
from tracebridge.schema.canonical import sha256_json
from tracebridge.schema.session import Session

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_ARCHIVE = re.compile(r"\.jsonl(?:\.(?:reset|deleted|bak)\..*|\.bak\d*)?$|\.bak\d*$"
                      r"|\.checkpoint\.[0-9a-fA-F-]{36}\.jsonl$|\.jsonl\.corrupt-[^/]*\.jsonl$")
_NO_PROMPTS_HASH = sha256_json({})  # an import knows no prompt templates


def session_id_from_name(name: str) -> str:
    """The session id encoded in a transcript file name (archive suffixes removed)."""
    return _ARCHIVE.sub("", name) or name


def scan_session_id(head: bytes) -> str | None:
    """The ``id`` of the first ``type: session`` row in the first bytes of a transcript."""
    for raw in head.split(b"\n", 64)[:64]:
        if b'"session"' not in raw:
            continue
        try:
            row = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(row, dict) and row.get("type") == "session" and isinstance(row.get("id"), str) and row["id"]:
            return row["id"]
    return None


def read_session_id(fh: BufferedReader, name: str, scan_bytes: int) -> tuple[str, int]:
    """(session id, BOM length) of a transcript opened at its start, left at its first row.

    The id is the header's (normally the first line: more of the file is scanned only if needed,
    up to ``scan_bytes``), else the one in the file ``name``. The head is read, then sought back
    to: inside the read buffer (``_READ_BUFFER``, more than ``scan_bytes``) that seek only moves
    the buffer's position, no second read of the file. (``peek`` instead copied everything
    buffered, the whole transcript up to 1 MiB, to look at its first 4 KiB.)
    """
    head = fh.read(4096)
    bom = 3 if head.startswith(b"\xef\xbb\xbf") else 0  # a UTF-8 BOM is no part of the first row
    sid = scan_session_id(head[bom:])
    if sid is None and len(head) == 4096 and not head.startswith(b'{"type":"session"'):
        sid = scan_session_id((head + fh.read(scan_bytes - len(head)))[bom:])
    fh.seek(bom)
    return sid or session_id_from_name(name), bom


def run_id_for(session_id: str, prefix: str = "oc-") -> str:
    """A directory-safe, stable run id for a source id: ``<prefix><id>`` (hash-suffixed if changed;
    the Agent Lightning importer and hook use it with ``al-`` for rollout ids)."""
    safe = _SAFE.sub("_", session_id)[:100]
    if safe != session_id:
        safe += "-" + hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()[:8]
    return prefix + safe


def session_record(m: SessionMapper, *, session_id: str, agent: str | None,
                   index_entry: dict[str, Any] | None, validate: bool = False) -> dict[str, Any]:
    """Build the ``session.json`` of an imported run from its mapper's state.

    Every field is built from typed values, so the record matches the schema by construction;
    ``validate=True`` checks it through the pydantic model as well (tests do).
    """
    role = m.first_model or {"model": "unknown", "params": {}}
    kind = m.kind or "unknown"
    goal, family = m.goal or "(no user message)", f"openclaw/{kind}"
    extra: dict[str, Any] = {"agent": agent, "session_id": session_id}
    header = m.header or {}
    if isinstance(header.get("cwd"), str):
        extra["cwd"] = header["cwd"]
    if "version" in header:
        extra["transcript_version"] = header.get("version")
    if isinstance(header.get("parentSession"), str):  # forked from that transcript
        extra["parent_session"] = header["parentSession"]
    if m.session_name is not None:
        extra["session_name"] = m.session_name
    if m.counts["branches"]:  # the session's path is the one that ends at its last entry
        extra["branches"] = m.counts["branches"]
        extra["leaf_entry_id"] = m.leaf
    if index_entry:
        extra["session_key"] = index_entry.get("key")
        for k in ("channel", "chatType", "lastChannel"):
            if isinstance(index_entry.get(k), str):
                extra[k] = index_entry[k]
    runtime = {"max_steps": max(1, m.step + 1), "prompt_sources": ["openclaw"], "tool_mode": "real",
               "seed": None, "seed_kind": None, "extra": extra}
    stack = {"planner": role, "worker": role, "verifier": {"model": "none", "params": {}}}
    started = m.first_ts or EPOCH
    data = {
        "schema_version": "2.0",
        "run_id": m.run_id,
        "goal": {"text": goal, "family": family, "goal_hash": goal_hash(goal, family)},  # make_goal's fields, no model
        "started_at": started,
        "finished_at": max(m.last_ts or started, started),
        "model_stack": stack,
        "runtime_config": runtime,
        "hashes": {"config_hash": sha256_json({"model_stack": stack, "runtime_config": runtime}),
                   "prompt_hash": _NO_PROMPTS_HASH, "toolset_hash": sha256_json(sorted(m.tools))},
        "data_governance": {"redaction_policy": None, "pii_scan": "not_run", "passes": []},
        "summary": {"success": None, "steps": m.step + 1 if m.events else 0, "tokens": m.tokens,
                    "cost_usd": round(m.cost, 6), "failure_class": m.last_error},
        "source": {"kind": "openclaw", "ref": f"openclaw:{agent or 'unknown'}/{session_id}"},
        "capture": {"events_written": m.events, "events_dropped": 0, "errors": 0},
        "labels": {},
    }
    if validate:
        return Session.model_validate(data).model_dump(mode="json")
    return data
