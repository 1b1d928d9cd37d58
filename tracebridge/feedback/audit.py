"""The daily feedback audit (``tracebridge feedback audit --day D``), JSON + Markdown.

For one UTC day: ledger rows of the day by emoji and by score (under the current mapping),
unmapped emojis, removals, orphan reactions (on messages in no registered batch), late
reactions (more than ``late_after_s`` after their chunk was sent), ignored ones (other-chunk
rule ``ignore``), shared ones (a bot's copy of a reaction in a supergroup or channel that another of
our bots' copy counts for: ``tracebridge.feedback.join`` rule 4), the runs and events the day's reactions label, unusable ledger and registry
lines (``file:line:field: problem``), and whether the harvest ran that day. ``bots`` splits the day's
rows and harvests per bot (``(none)`` for rows of no bot) when several bots share the files. What the day's harvests
did comes with it: each logged run (read, applied, ignored by reason, quarantined, rows added),
the inputs quarantined that day (``where: reason``), and the rows harvested that day for earlier
days (reactions that arrived after their day's audit was written, which that audit cannot show).
Evidence for the
last, strongest first: the harvest log has a run that day; ledger rows were harvested that day
(``harvested_at``); else, for ledgers written without either, rows of the day exist
(``harvest_evidence`` says which one was used).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from tracebridge.capture.reader import iter_lines
from tracebridge.capture.writer import write_atomic
from tracebridge.feedback.bots import NO_BOT, label, row_bot
from tracebridge.feedback.chunks import read_registry, sent_time
from tracebridge.feedback.config import FeedbackConfig
from tracebridge.feedback.join import join, reaction_of, seen
from tracebridge.feedback.ledger import LedgerRow, parse_time, read_ledger
from tracebridge.feedback.mapping import load_mapping, norm_emoji
from tracebridge.schema.canonical import sha256_bytes


def _on(t: dt.datetime | None, day: dt.date) -> bool:
    return t is not None and t.astimezone(dt.UTC).date() == day


def harvest_evidence(cfg: FeedbackConfig, rows: list[LedgerRow], day: dt.date) -> tuple[bool, str, int]:
    """(ran, evidence kind, harvest runs that day) — see the module docstring."""
    log = Path(cfg.harvest_log)
    runs = 0
    if log.is_file():
        runs = sum(1 for ln in iter_lines(log) if isinstance(ln.obj, dict) and _on(parse_time(ln.obj.get("time")), day))
        if runs:
            return True, "harvest_log", runs
    if any(_on(r.harvested_at, day) for r in rows):
        return True, "harvested_at", 0
    if not log.is_file() and not any(r.harvested_at for r in rows) and any(_on(r.time, day) for r in rows):
        return True, "ledger_rows", 0
    return False, "none", 0


_SUMMED = ("read", "applied", "quarantined", "added", "duplicates")


def _num(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _logged(cfg: FeedbackConfig, day: dt.date) -> Iterator[dict[str, Any]]:
    """The harvest log's runs of ``day``."""
    log = Path(cfg.harvest_log)
    for ln in iter_lines(log) if log.is_file() else ():
        if isinstance(ln.obj, dict) and _on(parse_time(ln.obj.get("time")), day):
            yield ln.obj


def _add_run(s: dict[str, Any], h: dict[str, Any]) -> dict[str, Any]:
    """``s`` with one more logged run ``h``: ``runs`` and the counts of ``_SUMMED``."""
    s["runs"] += 1
    for k in _SUMMED:
        s[k] += _num(h.get(k))
    return s


def harvests_of(cfg: FeedbackConfig, day: dt.date) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """What the harvest log's runs of ``day`` did, summed per source (a webhook logs one run per
    update): ``runs``, ``first``/``last`` time, ``read``, ``applied``, ``ignored`` by reason,
    ``quarantined``, ``added``, ``duplicates``; and the quarantine's entries written that day
    (``count`` and the first 50 as ``where: reason``). Runs logged before ``applied`` was kept
    count under ``runs_without_applied``."""
    out: dict[str, dict[str, Any]] = {}
    for h in _logged(cfg, day):
        s = _add_run(out.setdefault(str(h.get("source")), {"runs": 0, "first": h.get("time"), "last": h.get("time"),
                                                            **dict.fromkeys(_SUMMED, 0), "ignored": {},
                                                            "runs_without_applied": 0}), h)
        s["last"] = h.get("time")
        if not isinstance(h.get("applied"), int):
            s["runs_without_applied"] += 1
        for why, n in (h.get("ignored") if isinstance(h.get("ignored"), dict) else {}).items():
            s["ignored"][why] = s["ignored"].get(why, 0) + _num(n)
    bad: list[str] = []
    q = Path(cfg.quarantine)
    if q.is_file():
        for ln in iter_lines(q):
            if isinstance(ln.obj, dict) and _on(parse_time(ln.obj.get("time")), day):
                bad.append(f"{ln.obj.get('where')}: {ln.obj.get('reason')}")
    return out, {"path": cfg.quarantine, "count": len(bad), "samples": bad[:50]}


def harvests_by_bot(cfg: FeedbackConfig, day: dt.date) -> dict[str, dict[str, int]]:
    """Per bot (``(none)`` for the unnamed one), the harvest log's runs of ``day`` and their summed counts."""
    out: dict[str, dict[str, int]] = {}
    for h in _logged(cfg, day):
        _add_run(out.setdefault(label(row_bot(h, cfg.legacy_bot_id)), {"runs": 0, **dict.fromkeys(_SUMMED, 0)}), h)
    return out


def _bots_today(today: list[LedgerRow], legacy: str, harvests: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Per bot: its ledger rows of the day (``rows_today``, ``added``, ``removed``) and its harvests."""
    out: dict[str, Any] = {b: {"rows_today": 0, "added": 0, "removed": 0, "harvests": h} for b, h in harvests.items()}
    for r in today:
        b = out.setdefault(label(row_bot(r.raw, legacy)), {"rows_today": 0, "added": 0, "removed": 0, "harvests": {}})
        b["rows_today"] += 1
        b[r.change] += r.count
    return dict(sorted(out.items()))


def audit_day(cfg: FeedbackConfig, day: dt.date) -> dict[str, Any]:
    """The audit of one UTC day as a JSON-able dict (``passed`` = the harvest ran)."""
    salt = os.environ.get(cfg.user_salt_env) or None  # private chats older rows kept in the clear, as pseudonyms
    scan = read_ledger(cfg.ledger, salt)
    mapping = load_mapping(cfg.mapping)
    legacy = cfg.legacy_bot_id
    registry = read_registry(cfg.registry, legacy, salt)
    today = [r for r in scan.rows if _on(r.time, day)]
    ran, evidence, runs = harvest_evidence(cfg, scan.rows, day)
    added = [r for r in today if r.change == "added"]
    by_emoji: Counter[str] = Counter()
    by_score: Counter[str] = Counter()
    unmapped: Counter[str] = Counter()
    for r in added:
        by_emoji[norm_emoji(r.emoji)] += r.count
        s = mapping.score(r.emoji)
        by_score["unlabeled" if s is None else f"{s:+g}"] += r.count
        if s is None:
            unmapped[norm_emoji(r.emoji)] += r.count
    res = join(scan.rows, mapping, registry, cfg.other_chunks, legacy)
    day_keys = {reaction_of(r, legacy) for r in added}
    late = []
    first_added: dict[Any, LedgerRow] = {}  # a reaction's first row of the day: was looked for in every row, for
    for r in added:  # every joined reaction (8000 reactions in a day: 59 s)
        first_added.setdefault(reaction_of(r, legacy), r)
    for key, chunk, _ in res.joined:
        sent = sent_time(chunk)
        row = first_added.get(key)
        if row is not None and sent is not None and (row.time - sent).total_seconds() > cfg.late_after_s:
            late.append({"chat": key[0], "message_id": key[1], "emoji": key[3],
                         "delay_s": round((row.time - sent).total_seconds(), 1)})
    labeled = sorted({c.run_id for key, c, _ in res.joined if key in day_keys})
    harvests, quarantined = harvests_of(cfg, day)
    arrived = [r for r in scan.rows if _on(r.harvested_at, day) and r.time.astimezone(dt.UTC).date() < day]
    return {
        "day": day.isoformat(), "harvest_ran": ran, "harvest_evidence": evidence, "harvest_runs": runs,
        "passed": ran, "mapping_version": mapping.version,
        "ledger": {"path": cfg.ledger, "read": scan.read, "usable": len(scan.rows), "skipped": scan.skipped[:50],
                   "sha256": sha256_bytes(Path(cfg.ledger).read_bytes()) if Path(cfg.ledger).is_file() else None},
        "rows_today": len(today), "added": sum(r.count for r in added),
        "removed": sum(r.count for r in today if r.change == "removed"),
        "by_emoji": dict(by_emoji.most_common()), "by_score": dict(sorted(by_score.items())),
        "unmapped_emojis": dict(unmapped.most_common()),
        "orphans": [{"chat": k[0], "message_id": k[1], "emoji": k[3]} for k in res.orphans if k in day_keys],
        "ignored_other_chunk": [{"chat": k[0], "message_id": k[1], "emoji": k[3]} for k in res.ignored if k in day_keys],
        "shared": [seen(k, c) for k, c in res.shared if k in day_keys],
        "late": late, "late_after_s": cfg.late_after_s, "other_chunks": cfg.other_chunks,
        "runs_labeled": labeled, "registry_skipped": registry.skipped[:50],
        "bots": _bots_today(today, legacy, harvests_by_bot(cfg, day)),
        "harvests": harvests, "quarantined_today": quarantined,
        "harvested_today": sum(1 for r in scan.rows if _on(r.harvested_at, day)),
        "arrived_for_earlier_days": {
            "count": len(arrived),
            "by_day": dict(sorted(Counter(r.time.astimezone(dt.UTC).date().isoformat() for r in arrived).items())),
            "samples": [{"time": r.raw.get("time"), "chat": str(r.chat), "message_id": r.message_id,
                         "emoji": norm_emoji(r.emoji), "change": r.change} for r in arrived[:50]]},
    }


def to_markdown(a: dict[str, Any]) -> str:
    """A human-readable rendering of an audit."""
    lines = [f"# Feedback audit {a['day']}", "",
             (f"- harvest ran: **{'yes' if a['harvest_ran'] else 'NO'}** (evidence: {a['harvest_evidence']}, "
              f"{a['harvest_runs']} logged runs)"),
             f"- mapping version: {a['mapping_version']}; other-chunk rule: {a['other_chunks']}",
             (f"- ledger rows today: {a['rows_today']} (added {a['added']}, removed {a['removed']}); "
              f"ledger lines read {a['ledger']['read']}, usable {a['ledger']['usable']}"),
             f"- runs labeled: {len(a['runs_labeled'])}",
             (f"- harvested today: {a['harvested_today']} ledger rows, {a['arrived_for_earlier_days']['count']} of "
              f"them for earlier days; inputs quarantined today: {a['quarantined_today']['count']} "
              f"(in {a['quarantined_today']['path']})"),
             "", "| emoji | count |", "|---|---|"]
    lines += [f"| {e} | {n} |" for e, n in a["by_emoji"].items()] or ["| (none) | 0 |"]
    lines += ["", "| score | count |", "|---|---|"] + [f"| {s} | {n} |" for s, n in a["by_score"].items()]
    if set(a["bots"]) - {NO_BOT}:  # several bots share the files: each one's day
        lines += ["", "| bot | rows today | added | removed | harvest runs | read | rows added |", "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {b} | {x['rows_today']} | {x['added']} | {x['removed']} | {x['harvests'].get('runs', 0)} | "
                  f"{x['harvests'].get('read', 0)} | {x['harvests'].get('added', 0)} |" for b, x in a["bots"].items()]
    for title, key in (("Unmapped emojis", "unmapped_emojis"), ("Orphan reactions", "orphans"),
                       ("Late reactions", "late"), ("Ignored (other chunk)", "ignored_other_chunk"),
                       ("Seen by several of our bots, counted once", "shared"),
                       ("Unusable ledger lines", None), ("Unusable registry lines", "registry_skipped")):
        items = a["ledger"]["skipped"] if key is None else a[key]
        lines += ["", f"## {title} ({len(items)})"]
        if isinstance(items, dict):
            lines += [f"- {k}: {v}" for k, v in items.items()] or ["- none"]
        else:
            lines += [f"- {i if isinstance(i, str) else orjson.dumps(i).decode()}" for i in items] or ["- none"]
    lines += ["", f"## Harvests ({sum(h['runs'] for h in a['harvests'].values())} runs)", "",
              "| source | runs | first – last | read | applied | ignored | quarantined | rows added | duplicates |",
              "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for src, h in sorted(a["harvests"].items()):
        lines.append(f"| {src} | {h['runs']} | {h['first']} – {h['last']} | {h['read']} | {h['applied']} | "
                     f"{sum(h['ignored'].values())} | {h['quarantined']} | {h['added']} | {h['duplicates']} |")
    for src, h in sorted(a["harvests"].items()):
        lines += [f"- {src} ignored {n}: {why}" for why, n in sorted(h["ignored"].items())]
        if h["runs_without_applied"]:
            lines.append(f"- {src}: {h['runs_without_applied']} runs logged without applied/ignored counts")
    q = a["quarantined_today"]
    lines += ["", f"## Quarantined today ({q['count']})"] + ([f"- {x}" for x in q["samples"]] or ["- none"])
    e = a["arrived_for_earlier_days"]
    lines += ["", f"## Harvested today for earlier days ({e['count']})"]
    lines += [f"- {d}: {n}" for d, n in e["by_day"].items()] or ["- none"]
    return "\n".join(lines) + "\n"


def write_audit(cfg: FeedbackConfig, day: dt.date) -> tuple[dict[str, Any], Path, Path]:
    """Run the audit and write ``<audit_dir>/<day>.json`` and ``.md``, each atomically: a day is audited again
    by every later run, and one killed mid-write left half a JSON in place of the whole earlier one."""
    a = audit_day(cfg, day)
    out = Path(cfg.audit_dir)
    out.mkdir(parents=True, exist_ok=True)
    jp, mp = out / f"{day.isoformat()}.json", out / f"{day.isoformat()}.md"
    write_atomic(jp, orjson.dumps(a, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    write_atomic(mp, to_markdown(a).encode("utf-8"))
    return a, jp, mp
