"""Monthly mapping/reward review (phase 4): how users reacted this month against last month.

Reads the reaction ledger (``memory/feedback/telegram-reactions.jsonl``, one row per reaction
change, written by ``tracebridge.feedback``) and the versioned mapping
(``memory/feedback/reaction-mapping.json``). Reports, for the month and the month before:
reactions added/removed/net per emoji, the emoji distribution and its drift (chi-square test of
homogeneity and total-variation distance), the score distribution under the current mapping,
unmapped emojis, and proposed mapping changes. Proposals are suggestions for a person to accept:
nothing here edits the mapping. The report records when it was made (``generated_at``) and the
sha256 of the ledger and mapping it read (``inputs``), so a later audit can tell what it saw.

Each rule rests on named months of ledger rows (``RULES``): ``drift`` and ``review_unused`` (a mapped emoji
no reaction was added with) need the month and the month before, ``add_unmapped`` the month. A rule runs
only when the ledger has at least ``monthly.min_rows`` rows dated in each of its months (one row is one
reaction change: a month of one row says nothing of how users reacted that month); otherwise ``rules`` says
it was not evaluated and why ("needs 2 months of at least 5 ledger rows, has 1: 2026-11 (2026-10 has 1
row)") and it proposes nothing.
Each proposal names its rule and the months it rests on (``evidence``). A month is a UTC month.

Ledger fields read (tolerant of the writer's spelling): time ``time`` | ``ts`` | ``timestamp``
(ISO or epoch seconds); ``emoji``; change ``change`` | ``action`` (added | removed) or boolean
``added``; ``count`` (default 1: a user's reaction; an anonymous channel count's change is the
size of that change). Rows that lack them are counted as skipped with ``file:line:field``; read =
used + skipped + other months. Rows dated after the review's month are ignored and named (``after_month``:
rows, first and last ``file:line`` per month); a torn last line is named (``torn``) and the rows before it
used. Mapping: ``{"version": N, "mapping": {emoji: score}}`` (``scores`` also accepted), read by
``tracebridge.feedback.mapping`` as the daily audit and the export read it: no file is its built-in defaults
(a host that never edited the mapping), not an error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracebridge.capture.reader import parse_lines
from tracebridge.feedback.mapping import load_mapping as read_mapping
from tracebridge.feedback.mapping import mapping_from_bytes, norm_emoji
from tracebridge.schema.canonical import utc_now

# Suggested scores for common Telegram reactions that a mapping may not cover yet (documented
# guesses for a reviewer, never applied automatically).
LEXICON: dict[str, int] = {
    "🔥": 1, "🎉": 1, "👏": 1, "🙏": 1, "💯": 1, "👌": 1, "🤩": 1, "😍": 2, "🥰": 2, "🏆": 1, "✅": 1,
    "😁": 1, "🤝": 1, "🤔": 0, "🤯": 0, "😐": 0, "👀": 0, "😢": -1, "😭": -1, "🥱": -1, "🤨": -1,
    "😱": -1, "🤡": -1, "👻": 0, "😡": -2, "🤬": -2, "🤮": -2, "💩": -2, "💔": -2,
}


def load_mapping(path: str | Path) -> tuple[dict[str, float], Any, str | None]:
    """The emoji → score map (keys normalised), its version and the sha256 of the bytes read (None: no
    file), read as the daily audit and the export join read it (``tracebridge.feedback.mapping``): a
    missing file is the built-in defaults, version 1. The file is read once: the hash is of what was parsed.

    Raises:
        ValueError: unreadable or not a mapping of emoji to numbers (``path:key``).
    """
    p = Path(path)
    if not p.is_file():
        m = read_mapping(p)
        return m.scores, m.version, None
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read mapping: {exc}") from exc
    m = mapping_from_bytes(raw, str(p))
    return m.scores, m.version, hashlib.sha256(raw).hexdigest()


def _when(row: dict[str, Any]) -> dt.datetime | None:
    """The row's UTC time, or None (then skipped, its value named) for one no calendar holds: an epoch past 9999, NaN."""
    v = row.get("time", row.get("ts", row.get("timestamp")))
    try:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return dt.datetime.fromtimestamp(v / 1000 if v > 1e11 else v, dt.UTC)
        if isinstance(v, str):
            t = dt.datetime.fromisoformat(v)  # Python >= 3.11 reads a trailing Z
            # a month is a UTC month: 2026-12-01T00:30+01:00 is 2026-11-30 23:30 UTC
            return t.astimezone(dt.UTC) if t.tzinfo else t.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def month_key(t: dt.datetime) -> str:
    """``YYYY-MM`` with a four-digit year: ``strftime("%Y")`` writes year 5 as ``5``, and ``"5-01"`` sorted
    after every ``20xx`` month (a row dated year 5 was counted as after the reviewed month)."""
    return f"{t.year:04d}-{t.month:02d}"


def _change(row: dict[str, Any]) -> str | None:
    v = row.get("change", row.get("action"))
    if v in ("added", "removed"):
        return v
    if isinstance(row.get("added"), bool):
        return "added" if row["added"] else "removed"
    return None


@dataclass
class MonthCounts:
    """One month of the ledger: reactions added and removed per emoji, and the rows they came from."""

    added: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)
    rows: int = 0

    def net(self) -> Counter[str]:
        """Added minus removed per emoji, keeping only the positive counts."""
        out = Counter(self.added)
        out.subtract(self.removed)
        return Counter({k: v for k, v in out.items() if v > 0})


def month_bounds(month: str) -> tuple[dt.datetime, dt.datetime, str]:
    """[start, end) of a ``YYYY-MM`` month and the previous month's name.

    Raises:
        ValueError: not a month with a month before and after it (``--month`` names the input).
    """
    try:
        start = dt.datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=dt.UTC)
        end = (start + dt.timedelta(days=32)).replace(day=1)
        prev = (start - dt.timedelta(days=1)).strftime("%Y-%m")
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"--month {month}: not a month YYYY-MM between 0001-02 and 9999-11 ({exc})") from exc
    return start, end, prev


def _unreadable(line: Any, where: str) -> str:
    """Why a ledger line is skipped before its fields are read: torn, not JSON or not an object."""
    if line.torn:
        return f"{where}: torn last line (no line end: a write cut short or still going); the rows before it are used"
    return f"{where}: {line.error or 'not an object'}"


def _note_after(stats: dict[str, Any], month: str, where: str) -> None:
    """Count a row dated after the review's month under its month, with its first and last ``file:line``."""
    seen = stats["after_month"].setdefault(month, {"rows": 0, "first": where, "last": where})
    seen["rows"] += 1
    seen["last"] = where


def read_ledger(path: str | Path, months: tuple[str, str]) -> tuple[dict[str, MonthCounts], dict[str, Any]]:
    """Counts per month for ``months`` (the review's month, then the month before) and read/used/skipped counts
    with reasons: ``other_months`` (rows of neither), of them ``after_month`` (dated after the review's month:
    ignored, named per month with their first and last ``file:line``), ``torn`` (a cut last line, or None),
    ``sha256`` (of the bytes read, None: no ledger; rows the webhook appends while the review reads are
    either read and hashed or neither)."""
    out = {m: MonthCounts() for m in months}
    stats: dict[str, Any] = {"read": 0, "used": 0, "other_months": 0, "after_month": {}, "torn": None, "skipped": [],
                             "sha256": None}
    p = Path(path)
    if not p.is_file():
        stats["skipped"].append(f"{p}: no ledger")
        return out, stats
    digest = hashlib.sha256()
    with open(p, "rb") as fh:
        for line in parse_lines(_hashing(fh, digest)):
            _count_line(line, f"{p}:{line.lineno}", months, out, stats)
    stats["sha256"] = digest.hexdigest()
    return out, stats


def _hashing(fh: Any, digest: Any) -> Iterator[bytes]:
    """The lines of ``fh``, each added to ``digest`` as it is read."""
    for raw in fh:
        digest.update(raw)
        yield raw


def _count_line(line: Any, where: str, months: tuple[str, str], out: dict[str, MonthCounts],
                stats: dict[str, Any]) -> None:
    """Count one ledger line under its month, or as skipped (with why) or of another month."""
    stats["read"] += 1
    row = line.obj
    if line.error or not isinstance(row, dict):
        stats["torn"] = where if line.torn else stats["torn"]
        stats["skipped"].append(_unreadable(line, where))
        return
    when, change, emoji = _when(row), _change(row), row.get("emoji")
    bad = "time" if when is None else "change" if change is None else "emoji" if not isinstance(emoji, str) else None
    if bad:
        names = {"time": ("time", "ts", "timestamp"), "change": ("change", "action", "added"), "emoji": ("emoji",)}[bad]
        key = next((k for k in names if k in row), bad)
        value = f"got {row[key]!r}"[:120] if key in row else "missing"  # the value names the fix (ledger lines are hand-edited)
        want = {"time": "an ISO UTC time or epoch seconds/ms", "change": "added or removed", "emoji": "a string"}[bad]
        stats["skipped"].append(f"{where}:{key}: {value}; expected {want}")
        return
    m = month_key(when)  # type: ignore[arg-type]
    if m not in out:
        stats["other_months"] += 1
        if m > months[0]:  # YYYY-MM strings sort as months
            _note_after(stats, m, where)
        return
    count = row.get("count", 1)  # an anonymous channel count changes by more than one
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        stats["skipped"].append(f"{where}:count: must be a positive integer, got {count!r}")
        return
    stats["used"] += 1
    out[m].rows += 1
    getattr(out[m], change)[norm_emoji(emoji)] += count  # type: ignore[arg-type]


def drift(cur: Counter[str], prev: Counter[str]) -> dict[str, Any]:
    """Chi-square homogeneity test and total-variation distance between two emoji distributions."""
    keys = sorted(set(cur) | set(prev))
    n_c, n_p = sum(cur.values()), sum(prev.values())
    if not keys or n_c == 0 or n_p == 0:
        return {"tvd": None, "chi2_p": None, "note": "a month without reactions: no drift test"}
    tvd = 0.5 * sum(abs(cur[k] / n_c - prev[k] / n_p) for k in keys)
    p = None
    if len(keys) > 1:
        from scipy.stats import chi2_contingency

        p = float(chi2_contingency([[cur[k] for k in keys], [prev[k] for k in keys]])[1])
    return {"tvd": round(tvd, 4), "chi2_p": None if p is None else round(p, 6)}


def _scores(net: Counter[str], mapping: dict[str, float]) -> dict[str, Any]:
    vals = [mapping[e] for e, n in net.items() if e in mapping for _ in range(n)]
    if not vals:
        return {"n": 0, "mean": None, "positive": 0, "negative": 0}
    return {"n": len(vals), "mean": round(sum(vals) / len(vals), 4),
            "positive": sum(v > 0 for v in vals), "negative": sum(v < 0 for v in vals)}


@dataclass(frozen=True)
class Rule:
    """One check of the review and how many months of ledger rows it rests on."""

    name: str
    months: int  # 1: the review's month; 2: it and the month before
    what: str


RULES = (
    Rule("drift", 2, "the emoji distribution against the month before (chi-square, total variation)"),
    Rule("add_unmapped", 1, "propose a score for an unmapped emoji used monthly.min_count times or more in the month"),
    Rule("review_unused", 2, "propose to review a mapped emoji no reaction was added with in the month or the one before"),
)


def check_evidence(rows: dict[str, int], month: str, prev: str, min_rows: int) -> dict[str, dict[str, Any]]:
    """For each rule: the months it needs, the ledger rows of each, and whether it can be evaluated. A month
    rests a rule only with ``min_rows`` ledger rows or more (one row is one reaction change: too few to say how
    users reacted that month); a rule short of them in one of its months is not evaluated (``why_not``: "needs
    2 months of at least 5 ledger rows, has 1: 2026-11 (2026-10 has 1 row)"), so no proposal or drift claims
    more months than the ledger holds."""
    out = {}
    for rule in RULES:
        need = [month] if rule.months == 1 else [prev, month]
        has, short = [m for m in need if rows[m] >= min_rows], [m for m in need if rows[m] < min_rows]
        lack = [f"{m} has {rows[m]} row{'s' if rows[m] > 1 else ''}" if rows[m] else f"none dated {m}" for m in short]
        why = None
        if short:
            why = (f"needs {len(need)} month{'s' if len(need) > 1 else ''} of at least {min_rows} ledger "
                   f"row{'s' if min_rows > 1 else ''}, has {len(has)}" + (f": {', '.join(has)}" if has else "")
                   + f" ({'; '.join(lack)})")
        out[rule.name] = {"months": need, "rows": {m: rows[m] for m in need}, "evaluated": not short, "why_not": why}
    return out


def propose(counts: dict[str, MonthCounts], month: str, prev: str, mapping: dict[str, float], min_count: int,
            rules: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Proposed mapping changes (never applied), each naming its rule and the months it rests on: map frequent
    unmapped emojis (the month's net reactions), review mapped ones no reaction was added with in either month
    (added, not net: a reaction added and withdrawn was still used). A rule ``rules`` did not evaluate proposes
    nothing."""
    out = []
    if rules["add_unmapped"]["evaluated"]:
        for e, n in counts[month].net().most_common():
            if e in mapping or n < min_count:
                continue
            guess = LEXICON.get(e)
            out.append({"emoji": e, "change": "add", "count": n, "proposed_score": guess, "rule": "add_unmapped",
                        "evidence": [month],
                        "why": f"used {n}x in {month}, unmapped" + ("" if guess is not None else "; no suggestion, decide")})
    if rules["review_unused"]["evaluated"]:
        used = counts[month].added + counts[prev].added
        for e in sorted(mapping):
            if used[e] == 0:
                out.append({"emoji": e, "change": "review", "count": 0, "proposed_score": mapping[e],
                            "rule": "review_unused", "evidence": [prev, month],
                            "why": f"mapped but no reaction added in {prev} or {month} "
                                   f"(ledger rows: {counts[prev].rows} and {counts[month].rows})"})
    return out


def _no_usable_rows(stats: dict[str, Any], months: tuple[str, str]) -> str | None:
    """Why the review is based on nothing (no ledger row of the two months could be used), or None."""
    if stats["used"]:
        return None
    skipped = stats["skipped"]
    why = (f"all {len(skipped)} ledger rows that could be read were skipped (first: {skipped[0]})" if skipped
           and not stats["other_months"] else
           f"no ledger row is dated {months[0]} or {months[1]} ({stats['read']} read, "
           f"{stats['other_months']} of other months, {len(skipped)} skipped)")
    return f"no usable reaction row: {why}; no drift, score or proposal can be based on it"


def monthly_review(ledger: str | Path, mapping_path: str | Path, month: str, min_count: int = 5,
                   alpha: float = 0.05, min_rows: int = 5) -> dict[str, Any]:
    """The whole report as a dict (see the module docstring). ``ok`` is False, with the reason in
    ``problem`` and no proposals, when no ledger row of the month or the one before could be used.
    ``rules`` says, per rule, the months it needs and whether the ledger has rows in each (else it is not
    evaluated and says why); the exit code does not change for a rule not evaluated. ``month_over`` is False
    for a month still going at ``generated_at`` (its counts are partial; the Markdown says so)."""
    start, end, prev_m = month_bounds(month)
    month = start.strftime("%Y-%m")  # 2026-2 → 2026-02: ledger rows are keyed by the zero-padded month
    mapping, version, mapping_sha = load_mapping(mapping_path)
    counts, stats = read_ledger(ledger, (month, prev_m))
    # the sha256 of the very bytes evaluated: a row appended after the read is in neither
    inputs = {"ledger": str(ledger), "ledger_sha256": stats.pop("sha256"), "mapping": str(mapping_path),
              "mapping_sha256": mapping_sha,  # None: no file there, the built-in defaults were used (said so)
              "mapping_source": "file" if mapping_sha else "built-in defaults (no mapping file there)"}
    cur, prev = counts[month].net(), counts[prev_m].net()
    rules = check_evidence({m: c.rows for m, c in counts.items()}, month, prev_m, min_rows)
    d = drift(cur, prev) if rules["drift"]["evaluated"] else \
        {"tvd": None, "chi2_p": None, "note": f"too few reactions: {rules['drift']['why_not']}"}
    d["drifted"] = d.get("chi2_p") is not None and d["chi2_p"] < alpha
    unmapped = {e: n for e, n in cur.most_common() if e not in mapping}
    problem = _no_usable_rows(stats, (month, prev_m))
    return {
        "ok": problem is None, "problem": problem, "month": month, "previous_month": prev_m, "generated_at": utc_now(), "inputs": inputs,
        "month_over": end <= dt.datetime.now(dt.UTC),  # False: a month still going, its counts partial
        "mapping_version": version, "ledger_counts": stats,
        "emojis": {m: {"added": dict(c.added), "removed": dict(c.removed), "net": dict(c.net())}
                   for m, c in counts.items()},
        "drift": d, "scores": {month: _scores(cur, mapping), prev_m: _scores(prev, mapping)},
        "unmapped": unmapped, "rules": rules,
        "proposals": [] if problem else propose(counts, month, prev_m, mapping, min_count, rules),
    }
