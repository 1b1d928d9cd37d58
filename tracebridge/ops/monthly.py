"""Monthly mapping/reward review (phase 4): how users reacted this month against last month.

Reads the reaction ledger (``memory/feedback/telegram-reactions.jsonl``, one row per reaction
change, written by ``tracebridge.feedback``) and the versioned mapping
(``memory/feedback/reaction-mapping.json``). Reports, for the month and the month before:
reactions added/removed/net per emoji, the emoji distribution and its drift (chi-square test of
homogeneity and total-variation distance), the score distribution under the current mapping,
unmapped emojis, and proposed mapping changes. Proposals are suggestions for a person to accept:
nothing here edits the mapping. The report records when it was made (``generated_at``) and the
sha256 of the ledger and mapping it read (``inputs``), so a later audit can tell what it saw.

Ledger fields read (tolerant of the writer's spelling): time ``time`` | ``ts`` | ``timestamp``
(ISO or epoch seconds); ``emoji``; change ``change`` | ``action`` (added | removed) or boolean
``added``; ``count`` (default 1: a user's reaction; an anonymous channel count's change is the
size of that change). Rows that lack them are counted as skipped with ``file:line:field``; read =
used + skipped. Mapping: ``{"version": N, "mapping": {emoji: score}}`` (``scores`` also accepted), read
by ``tracebridge.feedback.mapping`` as the daily audit and the export read it: no file is its built-in
defaults (a host that never edited the mapping), not an error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracebridge.capture.reader import iter_lines
from tracebridge.feedback.mapping import load_mapping as read_mapping
from tracebridge.feedback.mapping import norm_emoji
from tracebridge.schema.canonical import utc_now

# Suggested scores for common Telegram reactions that a mapping may not cover yet (documented
# guesses for a reviewer, never applied automatically).
LEXICON: dict[str, int] = {
    "🔥": 1, "🎉": 1, "👏": 1, "🙏": 1, "💯": 1, "👌": 1, "🤩": 1, "😍": 2, "🥰": 2, "🏆": 1, "✅": 1,
    "😁": 1, "🤝": 1, "🤔": 0, "🤯": 0, "😐": 0, "👀": 0, "😢": -1, "😭": -1, "🥱": -1, "🤨": -1,
    "😱": -1, "🤡": -1, "👻": 0, "😡": -2, "🤬": -2, "🤮": -2, "💩": -2, "💔": -2,
}


def load_mapping(path: str | Path) -> tuple[dict[str, float], Any]:
    """The emoji → score map (keys normalised) and its version, read as the daily audit and the export
    join read it (``tracebridge.feedback.mapping``): a missing file is the built-in defaults, version 1.

    Raises:
        ValueError: unreadable or not a mapping of emoji to numbers (``path:key``).
    """
    try:
        m = read_mapping(path)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read mapping: {exc}") from exc
    return m.scores, m.version


def _when(row: dict[str, Any]) -> dt.datetime | None:
    v = row.get("time", row.get("ts", row.get("timestamp")))
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return dt.datetime.fromtimestamp(v / 1000 if v > 1e11 else v, dt.UTC)
    if isinstance(v, str):
        try:
            t = dt.datetime.fromisoformat(v)  # Python >= 3.11 reads a trailing Z
        except ValueError:
            return None
        return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    return None


def _change(row: dict[str, Any]) -> str | None:
    v = row.get("change", row.get("action"))
    if v in ("added", "removed"):
        return v
    if isinstance(row.get("added"), bool):
        return "added" if row["added"] else "removed"
    return None


@dataclass
class MonthCounts:
    added: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)

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


def read_ledger(path: str | Path, months: tuple[str, str]) -> tuple[dict[str, MonthCounts], dict[str, Any]]:
    """Counts per month for the two months; and read/used/skipped counts with reasons."""
    out = {m: MonthCounts() for m in months}
    stats: dict[str, Any] = {"read": 0, "used": 0, "other_months": 0, "skipped": []}
    p = Path(path)
    if not p.is_file():
        stats["skipped"].append(f"{p}: no ledger")
        return out, stats
    for line in iter_lines(p):
        stats["read"] += 1
        row, where = line.obj, f"{p}:{line.lineno}"
        if line.error or not isinstance(row, dict):
            stats["skipped"].append(f"{where}: {line.error or 'not an object'}")
            continue
        when, change, emoji = _when(row), _change(row), row.get("emoji")
        bad = "time" if when is None else "change" if change is None else "emoji" if not isinstance(emoji, str) else None
        if bad:
            stats["skipped"].append(f"{where}:{bad}: missing or invalid")
            continue
        m = when.strftime("%Y-%m")  # type: ignore[union-attr]
        if m not in out:
            stats["other_months"] += 1
            continue
        count = row.get("count", 1)  # an anonymous channel count changes by more than one
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            stats["skipped"].append(f"{where}:count: must be a positive integer, got {count!r}")
            continue
        stats["used"] += 1
        getattr(out[m], change)[norm_emoji(emoji)] += count  # type: ignore[arg-type]
    return out, stats


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


def propose(cur: Counter[str], prev: Counter[str], mapping: dict[str, float], min_count: int) -> list[dict[str, Any]]:
    """Proposed mapping changes (never applied): map frequent unmapped emojis, review unused ones."""
    out = []
    for e, n in cur.most_common():
        if e in mapping or n < min_count:
            continue
        guess = LEXICON.get(e)
        out.append({"emoji": e, "change": "add", "count": n, "proposed_score": guess,
                    "why": f"used {n}x this month, unmapped" + ("" if guess is not None else "; no suggestion, decide")})
    for e in sorted(mapping):
        if cur[e] == 0 and prev[e] == 0:
            out.append({"emoji": e, "change": "review", "count": 0, "proposed_score": mapping[e],
                        "why": "mapped but unused for two months"})
    return out


def _inputs(ledger: str | Path, mapping_path: str | Path) -> dict[str, Any]:
    """What the report read, with the sha256 of the bytes (None: no such file), so it can be audited later."""
    out = {}
    for key, p in (("ledger", Path(ledger)), ("mapping", Path(mapping_path))):
        out[key] = str(p)
        out[f"{key}_sha256"] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
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
                   alpha: float = 0.05) -> dict[str, Any]:
    """The whole report as a dict (see the module docstring). ``ok`` is False, with the reason in
    ``problem`` and no proposals, when no ledger row of the month or the one before could be used."""
    start, _, prev_m = month_bounds(month)
    month = start.strftime("%Y-%m")  # 2026-2 → 2026-02: ledger rows are keyed by the zero-padded month
    mapping, version = load_mapping(mapping_path)
    counts, stats = read_ledger(ledger, (month, prev_m))
    cur, prev = counts[month].net(), counts[prev_m].net()
    d = drift(cur, prev)
    d["drifted"] = d.get("chi2_p") is not None and d["chi2_p"] < alpha
    unmapped = {e: n for e, n in cur.most_common() if e not in mapping}
    problem = _no_usable_rows(stats, (month, prev_m))
    return {
        "ok": problem is None, "problem": problem, "month": month, "previous_month": prev_m, "generated_at": utc_now(), "inputs": _inputs(ledger, mapping_path),
        "mapping_version": version, "ledger_counts": stats,
        "emojis": {m: {"added": dict(c.added), "removed": dict(c.removed), "net": dict(c.net())}
                   for m, c in counts.items()},
        "drift": d, "scores": {month: _scores(cur, mapping), prev_m: _scores(prev, mapping)},
        "unmapped": unmapped, "proposals": [] if problem else propose(cur, prev, mapping, min_count),
    }


def to_markdown(rep: dict[str, Any]) -> str:
    """The report as Markdown for the monthly review meeting."""
    m, pm = rep["month"], rep["previous_month"]
    cur, prev = rep["emojis"][m]["net"], rep["emojis"][pm]["net"]
    lc = rep["ledger_counts"]
    inp = rep.get("inputs") or {}
    lines = [f"# Reaction mapping/reward review {m}", "",
             (f"Generated {rep.get('generated_at')} from {inp.get('ledger')} (sha256 {inp.get('ledger_sha256')}) "
              f"and {inp.get('mapping')} (sha256 {inp.get('mapping_sha256')})."), "",
             (f"Mapping version {rep['mapping_version']}; ledger rows read {lc['read']}, used {lc['used']}, "
              f"other months {lc['other_months']}, skipped {len(lc['skipped'])}."), "",
             *([f"**Review failed: {rep['problem']}.**", ""] if rep.get("problem") else []),
             f"## Distribution ({m} vs {pm})", "", "| emoji | " + m + " | " + pm + " |", "|---|---:|---:|"]
    for e in sorted(set(cur) | set(prev), key=lambda k: -(cur.get(k, 0) + prev.get(k, 0))):
        lines.append(f"| {e} | {cur.get(e, 0)} | {prev.get(e, 0)} |")
    d = rep["drift"]
    verdict = f"not tested: {d['note']}" if d.get("note") else "**drifted**" if d["drifted"] else "no significant drift"
    lines += ["", f"Drift: total variation {d.get('tvd')}, chi-square p {d.get('chi2_p')} → {verdict}.", "",
              f"Scores under the current mapping: {rep['scores'][m]} (previous: {rep['scores'][pm]}).", "",
              "## Unmapped emojis", ""]
    lines += [f"- {e}: {n}" for e, n in rep["unmapped"].items()] or ["- none"]
    lines += ["", "## Proposed mapping changes (for review; not applied)", ""]
    lines += [f"- {p['change']} {p['emoji']} → {p['proposed_score']}: {p['why']}" for p in rep["proposals"]] or ["- none"]
    if lc["skipped"]:
        lines += ["", "## Skipped ledger rows", ""] + [f"- {s}" for s in lc["skipped"][:50]]
    return "\n".join(lines) + "\n"
