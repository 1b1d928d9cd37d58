"""Rewriting the private chat ids an older version left in the clear (``tracebridge feedback migrate``).

A private chat's id is its user's Telegram id. Versions before private chats were pseudonymised kept it in the clear
in the ledger (``chat``), the chunk registry (``chat`` and ``key``), the quarantine (the bad input kept in ``raw``:
the chat, and before that the user too; reasons naming an OpenClaw direct chat's session key, whose peer is the
user), the harvest log (those reasons among its ``quarantine_samples``) and the daily audits (``<day>.json`` and
``.md``: orphans, late, ignored and shared reactions, rows that arrived late, quarantine samples). The readers take
those rows as the pseudonym, so they still join, but the ids stayed on disk. ``migrate_private_chats`` rewrites each
such row or item with the user's pseudonym under the harvest's salt (``ledger.private_chat``; a quarantined input as
``privacy.pseudonymised`` gives it, its key made anew so the same input quarantined again is deduped), file by file:
a file is replaced whole (a temporary beside it, fsynced, then renamed, its mode kept) under its lock, so a harvest,
``serve`` or ``chunks record`` running meanwhile waits and appends to the new file. Lines that do not parse are kept
as they are (no data lost); a batch id an older version derived from the chat id in the clear (and so from which
that id could be found back) is derived anew from the pseudonym, for every chunk of its batch. The run's counts (per
file: lines ``read`` = ``changed`` + ``unchanged`` + ``unreadable``) are appended to ``migrations.jsonl`` beside the
ledger; ``dry_run`` counts and writes nothing. The salt must be the ledger's (and the registry's): rewritten under
another, the ids would join nothing and could not be recovered.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import orjson

from tracebridge.feedback.chunks import _batch_id
from tracebridge.feedback.config import FeedbackConfig
from tracebridge.feedback.harvest import _salt
from tracebridge.feedback.ledger import append_locked, file_lock, in_clear, private_chat, salt_id
from tracebridge.feedback.privacy import pseudonymised
from tracebridge.schema.canonical import utc_now

# ``"chat": 5550001`` / ``"chat":"5550001"`` in an audit's Markdown (its lists are JSON objects)
_MD_CHAT = re.compile(r'("chat"\s*:\s*)"?(-?\d+)"?')
# the peer of a direct chat in an OpenClaw session key, as reasons of older versions named it
_KEY_PEER = re.compile(r"(telegram:(?:[\w-]+:)?(?:direct|dm):)(\d+)")


def migrate_private_chats(cfg: FeedbackConfig, *, dry_run: bool = False) -> dict[str, Any]:
    """Rewrite the private chat ids in the clear of ``cfg``'s ledger, registry, quarantine and audits.

    Returns:
        ``{"salt_id", "dry_run", "changed" (rows and items rewritten, all files), "files": [{"path", "kind",
        "read", "changed", "unchanged", "unreadable", "sha256_before", "sha256_after"}], "log"}``; files that
        do not exist are left out. ``log`` is the ``migrations.jsonl`` the counts were appended to (None when
        ``dry_run``).

    Raises:
        ValueError: no salt (``harvest._salt``), or the ledger's or registry's rows pseudonymised under another
            salt than this one; nothing is rewritten.
    """
    salt = _salt(cfg)
    sid = salt_id(salt)
    files: list[dict[str, Any]] = []
    with contextlib.ExitStack() as locks:  # the harvest's order: ledger, then registry, then quarantine
        for path in (cfg.ledger, cfg.registry, cfg.quarantine, cfg.harvest_log):
            if Path(path).is_file():
                locks.enter_context(file_lock(path))
        _check_salts(cfg, sid)
        firsts = _batch_firsts(Path(cfg.registry))
        for kind, path, fix in (("ledger", cfg.ledger, _row_fix(salt, sid, "ledger")),
                                ("registry", cfg.registry, _row_fix(salt, sid, "registry", firsts)),
                                ("quarantine", cfg.quarantine, _quarantined_fix(salt)),
                                ("harvest_log", cfg.harvest_log, _logged_fix(salt))):
            if Path(path).is_file():
                files.append(_rewrite_lines(Path(path), kind, fix, dry_run))
    audits = Path(cfg.audit_dir)
    for p in sorted(audits.glob("*.json")) + sorted(audits.glob("*.md")) if audits.is_dir() else []:
        if p.is_file() and not p.name.startswith("."):
            files.append(_rewrite_audit(p, salt, dry_run))
    doc = {"salt_id": sid, "dry_run": dry_run, "changed": sum(f["changed"] for f in files), "files": files,
           "log": None}
    if not dry_run:
        log = Path(cfg.ledger).parent / "migrations.jsonl"
        append_locked(log, [{"time": utc_now(), "migration": "private_chats", **doc, "log": None}], dedupe=False)
        doc["log"] = str(log)
    return doc


def _check_salts(cfg: FeedbackConfig, sid: str) -> None:
    """Raise when the ledger's or the registry's rows name a salt that is not ``sid``."""
    for path in (cfg.ledger, cfg.registry):
        held = sorted({o["salt_id"] for o in _objects(Path(path)) if isinstance(o.get("salt_id"), str)} - {sid})
        if held:
            raise ValueError(f"{path}: its rows were pseudonymised under salt {', '.join(held)}, this run's is {sid}: "
                             "the private chat ids rewritten under it would join none of them, and the ids could not "
                             f"be recovered; set {cfg.user_salt_env} to the harvest's salt; nothing rewritten")


def _objects(path: Path) -> Iterator[dict[str, Any]]:
    if path.is_file():
        with open(path, "rb") as fh:
            for line in fh:
                with contextlib.suppress(orjson.JSONDecodeError):
                    if isinstance(obj := orjson.loads(line), dict):
                        yield obj


def _batch_firsts(path: Path) -> dict[str, Any]:
    """Batch id → the message id of its first chunk (``chunk_index`` 0), from which a batch id was derived."""
    return {str(o.get("batch_id")): o.get("message_id") for o in _objects(path) if o.get("chunk_index") == 0}


def _row_fix(salt: str, sid: str, kind: str, firsts: dict[str, Any] | None = None) -> Callable[[dict[str, Any]], bool]:
    """A ledger or registry row's fix: its chat as the pseudonym (a registry row also its key and its salt, and a
    batch id derived from the chat's id in the clear, which that id could be found back from, derived anew from the
    pseudonym as a batch recorded now is: recording the batch again gives that id)."""
    def fix(row: dict[str, Any]) -> bool:
        clear = row.get("chat")
        if not in_clear(clear):
            return False
        row["chat"] = private_chat(int(clear), salt)
        if kind == "registry":
            at = f"{row['bot_id']}@" if row.get("bot_id") else ""
            if row.get("key") == f"{at}{clear}:{row.get('message_id')}":  # the key rows of this chat are written with
                row["key"] = f"{at}{row['chat']}:{row.get('message_id')}"
            row["salt_id"] = sid
            first, run = (firsts or {}).get(str(row.get("batch_id"))), row.get("run_id")
            for b in (at, ""):  # a batch the legacy bot recorded before it had a bot id was derived without one
                if first is not None and row.get("batch_id") == _batch_id(b, clear, first, run):
                    row["batch_id"] = _batch_id(b, row["chat"], first, run)
                    break
        return True
    return fix


def _quarantined_fix(salt: str) -> Callable[[dict[str, Any]], bool]:
    """A quarantine entry's fix: its input (``raw``) and reason as a harvest now writes them, and its key anew."""
    def fix(row: dict[str, Any]) -> bool:
        raw, reason = row.get("raw"), row.get("reason")
        text = raw
        if isinstance(raw, str):
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                text = pseudonymised(raw, salt)  # a torn line kept as text
            else:
                new = pseudonymised(obj, salt)
                text = raw if new == obj else orjson.dumps(new, default=str).decode()
        text = _peers(text, salt) if isinstance(text, str) else text
        new_reason = _peers(pseudonymised(reason, salt), salt) if isinstance(reason, str) else reason
        if text == raw and new_reason == reason:
            return False
        row["raw"], row["reason"] = text, new_reason
        row["key"] = "q:" + hashlib.sha256(f"{row.get('where')}|{text}".encode()).hexdigest()[:24]
        return True
    return fix


def _logged_fix(salt: str) -> Callable[[dict[str, Any]], bool]:
    """A harvest log row's fix: the session keys its quarantine samples (``where: reason``) name."""
    def fix(row: dict[str, Any]) -> bool:
        samples = row.get("quarantine_samples")
        if not isinstance(samples, list):
            return False
        new = [_peers(x, salt) if isinstance(x, str) else x for x in samples]
        row["quarantine_samples"] = new
        return new != samples
    return fix


def _peers(text: str, salt: str) -> str:
    """``text`` with the peer id of every OpenClaw direct-chat session key in it as the user's pseudonym
    (``privacy.pseudonymous_key``); versions before it named the key whole in quarantine reasons."""
    return _KEY_PEER.sub(lambda m: f"{m.group(1)}{private_chat(int(m.group(2)), salt)}", text) \
        if "telegram:" in text else text


def _counts(path: Path, kind: str) -> dict[str, Any]:
    return {"path": str(path), "kind": kind, "read": 0, "changed": 0, "unchanged": 0, "unreadable": 0,
            "sha256_before": _sha256(path), "sha256_after": None}


def _rewrite_lines(path: Path, kind: str, fix: Callable[[dict[str, Any]], bool], dry_run: bool) -> dict[str, Any]:
    """Rewrite the JSONL file ``path`` with ``fix`` applied to each row, streamed into a temporary beside it (a
    ledger of millions of rows is never held whole); a line that is no JSON object, or a row ``fix`` leaves alone,
    is kept byte for byte."""
    out = _counts(path, kind)
    with _Replacement(path, dry_run) as new, open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                out["read"] += 1
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:
                    row = None
                if not isinstance(row, dict):
                    out["unreadable"] += 1
                elif fix(row):
                    out["changed"] += 1
                    line = orjson.dumps(row) + (b"\n" if line.endswith(b"\n") else b"")
                else:
                    out["unchanged"] += 1
            new.write(line)
        new.keep = bool(out["changed"])
    out["sha256_after"] = _sha256(path)
    return out


def _rewrite_audit(path: Path, salt: str, dry_run: bool) -> dict[str, Any]:
    """An audit's JSON (every ``chat`` in it) or Markdown (every ``"chat": <id>`` of its lists) with the private
    chats as pseudonyms; ``read`` counts the chats named, ``changed`` those rewritten."""
    out = _counts(path, "audit")
    data = path.read_bytes()
    if path.suffix == ".json":
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            out["read"] = out["unreadable"] = 1
            return out

        def walk(v: Any) -> Any:
            if isinstance(v, list):
                return [walk(x) for x in v]
            if isinstance(v, str) and (t := _peers(v, salt)) != v:  # a quarantine sample naming a session key
                out["read"] += 1
                out["changed"] += 1
                return t
            if not isinstance(v, dict):
                return v
            if "chat" in v:
                out["read"] += 1
                out["changed" if in_clear(v["chat"]) else "unchanged"] += 1
            return {k: private_chat(int(x), salt) if k == "chat" and in_clear(x) else walk(x) for k, x in v.items()}

        new = walk(doc)
        data = orjson.dumps(new, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n" if new != doc else data
    else:
        def sub(m: re.Match[str]) -> str:
            out["read"] += 1
            if not in_clear(m.group(2)):
                out["unchanged"] += 1
                return m.group(0)
            out["changed"] += 1
            return f'{m.group(1)}"{private_chat(int(m.group(2)), salt)}"'

        def peer(m: re.Match[str]) -> str:
            out["read"] += 1
            out["changed"] += 1
            return f"{m.group(1)}{private_chat(int(m.group(2)), salt)}"

        text = _MD_CHAT.sub(sub, data.decode("utf-8", "surrogateescape"))
        data = _KEY_PEER.sub(peer, text).encode("utf-8", "surrogateescape")
    with _Replacement(path, dry_run) as new:
        new.write(data)
        new.keep = bool(out["changed"])
    out["sha256_after"] = _sha256(path)
    return out


class _Replacement:
    """A temporary file beside ``path`` (its mode) that replaces it whole on leaving, when ``keep`` was set and
    this is no dry run: written, fsynced, renamed over it, its folder fsynced. Otherwise, or on an error, the
    temporary is removed and ``path`` is as it was."""

    def __init__(self, path: Path, dry_run: bool) -> None:
        self.path, self.dry_run, self.keep = path, dry_run, False
        self.tmp = path.with_name(f".{path.name}.migrate.{os.getpid()}")
        self.fh: Any = None

    def __enter__(self) -> Self:
        if not self.dry_run:
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, stat.S_IMODE(self.path.stat().st_mode))
            self.fh = os.fdopen(fd, "wb")
        return self

    def write(self, data: bytes) -> None:
        if self.fh is not None:
            self.fh.write(data)

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if self.fh is None:
            return
        try:
            if kind is None and self.keep:
                self.fh.flush()
                os.fsync(self.fh.fileno())
                self.fh.close()
                os.replace(self.tmp, self.path)
                dfd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        finally:
            self.fh.close()
            self.tmp.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
