"""Fuzz kinds of the OpenClaw importer and the Telegram update harvester (the driver, shared
mutations and promises are in ``tracebridge.testing.fuzz_driver``; used by
``scripts/chaos_fuzz.py`` and tests/reliability). Mutated lines are inserted as copies, so every
base line stays in the file untouched.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tracebridge.testing.fuzz_driver import (
    BOM,
    LOCATED,
    OPENCLAW_BASE,
    Case,
    FuzzKind,
    _file_bytes,
    _fresh,
    _line_numbers,
    nested_huge_or_deep,
    nested_wrong_type,
)
from tracebridge.testing.mutate import MUTATIONS, as_object, mutate_lines

# ---------------------------------------------------------------------------- OpenClaw importer


def parent_swap(line: bytes, rng: random.Random) -> bytes:
    """Swap a row's id and parentId: with the original rows this closes a parent cycle."""
    obj = as_object(line)
    if "id" in obj and "parentId" in obj:
        obj["id"], obj["parentId"] = obj["parentId"], obj["id"]
    return orjson.dumps(obj)


def unknown_row(line: bytes, rng: random.Random) -> bytes:
    """A row or message of a type/role the importer has never seen."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return line
    if isinstance(obj, dict) and isinstance(obj.get("message"), dict) and rng.random() < 0.5:
        obj["message"]["role"] = rng.choice(["system", "developer", "", "toolresult", 3])
    elif isinstance(obj, dict):
        obj["type"] = rng.choice(["branch_summary", "label", "session_info", "", "MESSAGE"])
    return orjson.dumps(obj)


OPENCLAW_MUTATIONS = {**MUTATIONS, "nested_wrong_type": nested_wrong_type, "nested_huge_or_deep": nested_huge_or_deep,
                      "parent_swap": parent_swap, "unknown_row": unknown_row}


class OpenClawFuzz:
    """``import_openclaw`` on a mutated copy of the fixture transcript (final: a torn last line is
    quarantined). Lost = a base line quarantined, or fewer lines accepted than the base has; the
    imported run must also keep one root and parents that come before their children."""

    def __init__(self, tmp: Path, base: Path = OPENCLAW_BASE) -> None:
        from tracebridge.importers.config import ImportConfig
        from tracebridge.importers.openclaw import import_openclaw

        self.tmp, self.cfg, self.run = tmp, ImportConfig(final=True), import_openclaw
        lines = base.read_bytes().splitlines()
        probe = _fresh(tmp / "probe")
        (probe / "base.jsonl").write_bytes(base.read_bytes())
        self.run([probe / "base.jsonl"], probe / "out", self.cfg)
        bad = {q["line"] for q in _jsonl(probe / "out" / ".import" / self.cfg.quarantine_file)}
        self.base = [ln for i, ln in enumerate(lines, 1) if i not in bad]  # the fixture's valid rows

    def make(self, rng: random.Random) -> Case:
        """The valid fixture lines with 1 to 4 mutated copies inserted, written as one file's
        bytes."""
        lines, bad = mutate_lines(self.base, rng, rng.randint(1, 4), OPENCLAW_MUTATIONS)
        return Case(self.tmp / "case" / "in" / "s.jsonl", _file_bytes(lines, rng), lines, bad)

    def feed(self, case: Case) -> Any:
        """Import the case file into a fresh folder; return the ``ImportReport``."""
        _fresh(case.path.parent.parent)
        case.path.parent.mkdir()
        case.path.write_bytes(case.data)
        return self.run([case.path], case.path.parent.parent / "out", self.cfg)

    def verify(self, case: Case, rep: Any) -> dict[str, int]:
        """Counts of ``unreconciled``, ``unlocated``, ``lost`` and ``bad_lineage`` for the case's
        import."""
        out = case.path.parent.parent / "out"
        q = _jsonl(out / ".import" / self.cfg.quarantine_file)
        n = _line_numbers(case.data)
        unreconciled = (not rep.reconciles or rep.lines_read + rep.lines_blank != n or len(q) != rep.lines_quarantined
                        or rep.files_skipped > 0)
        unlocated = sum(not (q_["file"] == str(case.path) and 1 <= q_["line"] <= n and q_["field"] and q_["reason"])
                        for q_ in q)
        unlocated += sum(not LOCATED.match(s) for s in rep.quarantine_samples)
        quarantined = {q_["line"] for q_ in q}
        lost = sum(ln in quarantined for ln in case.untouched_lines())
        lost += max(0, len(self.base) - rep.lines_accepted)
        return {"unreconciled": int(unreconciled), "unlocated": unlocated, "lost": lost,
                "bad_lineage": sum(_lineage_faults(p) for p in out.glob("*/events.jsonl"))}


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(ln) for ln in path.read_bytes().splitlines() if ln.strip()] if path.is_file() else []


def _lineage_faults(events: Path) -> int:
    """Events whose parent is unknown or later, duplicate ids, and roots beyond the first."""
    seen: set[str] = set()
    faults = roots = 0
    for ev in _jsonl(events):
        pid = ev.get("parent_event_id")
        roots += pid is None
        faults += (pid is not None and pid not in seen) or ev["event_id"] in seen
        seen.add(ev["event_id"])
    return faults + abs(roots - 1)


# ---------------------------------------------------------------------------- Telegram harvester


def _emoji(e: str) -> dict[str, str]:
    return {"type": "emoji", "emoji": e}


def telegram_base() -> list[bytes]:
    """A getUpdates JSONL dump: reactions added/removed (users, chats, custom and paid), anonymous
    counts, updates that are not reactions, and one getUpdates response holding three updates."""
    date = 1772000000
    ups: list[dict[str, Any]] = []
    for i in range(8):
        old = [_emoji("👍")] if i % 3 == 2 else []
        new = [[_emoji("❤️")], [_emoji("👎"), {"type": "custom_emoji", "custom_emoji_id": f"55{i}"}],
               [{"type": "paid"}], [_emoji("🙈")]][i % 4]
        actor = {"user": {"id": 700 + i, "first_name": "Ada"}} if i % 2 else {"actor_chat": {"id": -100 - i}}
        ups.append({"update_id": 1000 + i, "message_reaction": {
            "chat": {"id": 42 + i % 3, "type": "private"}, "message_id": 10 + i, "date": date + 60 * i,
            "old_reaction": old, "new_reaction": new, **actor}})
    for i in range(3):
        ups.append({"update_id": 2000 + i, "message_reaction_count": {
            "chat": {"id": -1001, "type": "channel"}, "message_id": 90 + i, "date": date + 30 * i,
            "reactions": [{"type": _emoji("👍"), "total_count": 2 + i}, {"type": {"type": "paid"}, "total_count": 1}]}})
    ups.append({"update_id": 3000, "message": {"message_id": 5, "chat": {"id": 42}, "date": date, "text": "hi"}})
    ups.append({"update_id": 3001, "edited_message": {"message_id": 5, "chat": {"id": 42}, "date": date}})
    lines = [orjson.dumps(u) for u in ups]
    resp = {"ok": True, "result": [
        {"update_id": 4000 + i, "message_reaction": {"chat": {"id": 7}, "message_id": 300 + i, "date": date,
                                                     "user": {"id": 9}, "old_reaction": [],
                                                     "new_reaction": [_emoji("👍")]}} for i in range(3)]}
    return [*lines, orjson.dumps(resp)]


def duplicate_update(line: bytes, rng: random.Random) -> bytes:
    """The same update id with other content (a re-delivery that changed) or a plain re-delivery."""
    obj = as_object(line)
    body = obj.get("message_reaction")
    if isinstance(body, dict) and rng.random() < 0.7:
        body["new_reaction"] = [_emoji(rng.choice(["👍", "🔥", "❤"]))]
    return orjson.dumps(obj)


def date_back(line: bytes, rng: random.Random) -> bytes:
    """A reaction dated before (or far outside) the base's range: out-of-order times."""
    obj = as_object(line)
    for body in obj.values():
        if isinstance(body, dict) and "date" in body:
            body["date"] = rng.choice([0, 1, 1500000000, -1, 2**40, 1e300, 253402300800])
    return orjson.dumps(obj)


def unknown_update(line: bytes, rng: random.Random) -> bytes:
    """An update type the harvester does not know (kept out of the ledger, not an error)."""
    obj = as_object(line)
    body = obj.pop("message_reaction", obj.pop("message_reaction_count", {}))
    obj[rng.choice(["business_message", "purchased_paid_media", "message_reaction_v2"])] = body
    return orjson.dumps(obj)


TELEGRAM_MUTATIONS = {**MUTATIONS, "nested_wrong_type": nested_wrong_type, "nested_huge_or_deep": nested_huge_or_deep,
                      "duplicate_update": duplicate_update, "date_back": date_back, "unknown_update": unknown_update}


def _updates_in(data: bytes, path: Path, doc: bool) -> list[tuple[str, Any]]:
    """(location, update) of every item a reader of the dump should see, BOM allowed."""
    data = data.removeprefix(BOM)
    if doc:
        return [(f"{path}:result[{i}]", u) for i, u in enumerate(orjson.loads(data)["result"])]
    out: list[tuple[str, Any]] = []
    for lineno, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("result"), list):
            out += [(f"{path}:{lineno}:result[{i}]", u) for i, u in enumerate(obj["result"])]
        else:
            out.append((f"{path}:{lineno}", obj))
    return out


def _embeddable(line: bytes) -> bool:
    """A mutated line that can sit inside a getUpdates document (an object orjson can write)."""
    obj = as_object(line)
    try:
        return bool(obj) and bool(orjson.dumps({"ok": True, "result": [obj]}))
    except orjson.JSONEncodeError:
        return False


def _count_totals(upd: Any) -> tuple[tuple[Any, int], Counter[str]] | None:
    """((chat, message id), totals) of an anonymous reaction-count update, else None; the chat as the ledger
    keeps it (a positive id, a private chat's, as its pseudonym: ``ledger.private_chat``)."""
    from tracebridge.feedback.ledger import private_chat
    from tracebridge.feedback.mapping import norm_emoji
    from tracebridge.feedback.telegram import reaction_key

    body = upd.get("message_reaction_count") if isinstance(upd, dict) else None
    if not isinstance(body, dict) or "message_reaction" in upd:
        return None
    totals: Counter[str] = Counter()
    for r in body["reactions"] or []:
        totals[norm_emoji(reaction_key(r["type"]))] += r["total_count"]  # type: ignore[arg-type]
    return (private_chat(body["chat"]["id"]), body["message_id"]), totals


@dataclass
class DumpCase(Case):
    """A getUpdates dump case; ``doc``: one response document instead of JSONL."""

    doc: bool = False


def _key_update_id(key: str) -> int:
    """The update id in a reaction row's dedupe key (``<source>:<update_id>:...``)."""
    return int(key.split(":")[1])


class TelegramFuzz:
    """``harvest_dumps`` on a mutated getUpdates dump: JSONL (one update or response per line) or,
    for a quarter of the cases, one getUpdates response document (its mutations kept to valid
    JSON: a document that does not parse is one unreadable item). Lost = a dedupe key of the
    base's reaction rows missing from the ledger, of the updates whose first accepted delivery is the base's
    own (the first delivery of an update id wins; a different one with that id is a conflict), or an
    anonymous net count that differs from the totals of the newest accepted count update of that
    message (counts are absolute; an older date, or at the same date an older or repeated update id, is stale)."""

    def __init__(self, tmp: Path) -> None:
        from tracebridge.feedback import harvest_dumps
        from tracebridge.feedback.config import FeedbackConfig

        self.tmp, self.harvest, self.config = tmp, harvest_dumps, FeedbackConfig
        self.base = telegram_base()
        self.doc_base = self.base[:-1] + [orjson.dumps(u) for u in orjson.loads(self.base[-1])["result"]]
        self.keys = {doc: self._base_keys(doc) for doc in (False, True)}
        self.updates = {u["update_id"]: u for ln in self.doc_base for u in [orjson.loads(ln)]}  # id -> base update

    def _base_keys(self, doc: bool) -> set[str]:
        """Dedupe keys of the reaction rows the unmutated base harvests into."""
        case = self._case(self.doc_base if doc else self.base, set(), doc, random.Random(0))
        self.feed(case)
        return {r["key"] for r in _jsonl(Path(self._cfg(case).ledger)) if r["user"] != "anonymous"}

    def _case(self, lines: list[bytes], bad: set[int], doc: bool, rng: random.Random) -> DumpCase:
        path = self.tmp / "case" / "in" / "dump.json"
        if doc:
            data = orjson.dumps({"ok": True, "result": [orjson.loads(ln) for ln in lines]})
            data = BOM + data if rng.random() < 0.1 else data
            return DumpCase(path, data, lines, bad, doc=True)
        return DumpCase(path, _file_bytes(lines, rng), lines, bad)

    def make(self, rng: random.Random) -> DumpCase:
        """A mutated dump: JSONL, or (1 in 4) one getUpdates document keeping only the mutations
        that embed as JSON."""
        doc = rng.random() < 0.25
        lines, bad = mutate_lines(self.doc_base if doc else self.base, rng, rng.randint(1, 4), TELEGRAM_MUTATIONS)
        if doc:
            keep = [i for i, ln in enumerate(lines) if i not in bad or _embeddable(ln)]
            lines, bad = [lines[i] for i in keep], {j for j, i in enumerate(keep) if i in bad}
        return self._case(lines, bad, doc, rng)

    def _cfg(self, case: DumpCase) -> Any:
        d = case.path.parent.parent / "memory"
        return self.config(ledger=str(d / "ledger.jsonl"), mapping=str(d / "mapping.json"),
                           registry=str(d / "chunks.jsonl"), harvest_log=str(d / "harvest.jsonl"),
                           quarantine=str(d / "quarantine.jsonl"), audit_dir=str(d / "audit"))

    def feed(self, case: DumpCase) -> Any:
        """Harvest the case dump into a fresh folder; return the harvest report."""
        _fresh(case.path.parent.parent)
        case.path.parent.mkdir()
        case.path.write_bytes(case.data)
        return self.harvest(self._cfg(case), [case.path])

    def verify(self, case: DumpCase, rep: Any) -> dict[str, int]:
        """Counts of ``unreconciled``, ``unlocated`` and ``lost`` for the case's harvest."""
        cfg = self._cfg(case)
        items = _updates_in(case.data, case.path, case.doc)
        q = _jsonl(Path(cfg.quarantine))
        where = {str(r["where"]).rsplit(":", 1)[0] for r in q}
        unreconciled = (rep.read != len(items) or rep.read != rep.accepted + rep.quarantined or len(q) != rep.quarantined)
        locs = {loc for loc, _ in items}
        unlocated = sum(str(r["where"]).rsplit(":", 1)[0] not in locs or not str(r["where"]).rsplit(":", 1)[1]
                        for r in q)
        ledger = _jsonl(Path(cfg.ledger))
        first: dict[int, Any] = {}  # update id -> its first accepted delivery: a later different one is a conflict
        for loc, upd in items:
            if loc not in where and isinstance(upd, dict) and type(upd.get("update_id")) is int:
                first.setdefault(upd["update_id"], upd)
        # excused: the rows of an update whose id a different, accepted delivery took first
        expected = {k for k in self.keys[case.doc]
                    if first.get(_key_update_id(k), self.updates[_key_update_id(k)]) == self.updates[_key_update_id(k)]}
        lost = len(expected - {r["key"] for r in ledger})
        last: dict[tuple[Any, int], tuple[tuple[Any, int], Counter[str]]] = {}  # message -> newest (date, id), totals
        for loc, upd in items:
            got = _count_totals(upd) if loc not in where else None
            order = (upd["message_reaction_count"]["date"], upd["update_id"]) if got is not None else None
            if got is not None and (got[0] not in last or order > last[got[0]][0]):
                last[got[0]] = (order, got[1])
        net: Counter[tuple[Any, int, str]] = Counter()
        for r in ledger:
            if r["user"] == "anonymous":
                net[(r["chat"], r["message_id"], r["emoji"])] += r["count"] if r["change"] == "added" else -r["count"]
        for (chat, mid), (_, totals) in last.items():
            emojis = set(totals) | {e for (c, m, e) in net if (c, m) == (chat, mid)}
            lost += any(net[(chat, mid, e)] != totals[e] for e in emojis)
        return {"unreconciled": int(unreconciled), "unlocated": unlocated, "lost": lost}


EXTRA_KINDS: dict[str, Callable[[Path], FuzzKind]] = {"openclaw": OpenClawFuzz, "telegram": TelegramFuzz}
