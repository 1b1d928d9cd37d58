"""The monthly mapping/reward review's page (``tracebridge.ops.monthly``'s report as Markdown, for the
review meeting): ledger counts, distribution, drift, scores, rules and their months, unmapped emojis and
proposals."""

from __future__ import annotations

from typing import Any

from tracebridge.ops.monthly import RULES


def _rules_md(rules: dict[str, dict[str, Any]]) -> list[str]:
    """One line per rule: the months it rests on, and evaluated (on how many rows) or not and why."""
    lines = ["## Rules and the months of ledger rows they rest on", ""]
    for rule in RULES:
        r = rules.get(rule.name)
        if r is None:
            continue
        head = f"- {rule.name} ({', '.join(r['months'])}): "
        lines.append(head + (f"evaluated on {' + '.join(str(n) for n in r['rows'].values())} ledger rows"
                             if r["evaluated"] else f"**not evaluated**: {r['why_not']}") + f"; {rule.what}")
    return lines


def _ledger_md(lc: dict[str, Any], month: str) -> list[str]:
    """The ledger's read/used/skipped line, its torn last line, and the rows dated after the month."""
    torn = f" Torn last line: {lc['torn']} (the rows before it used)." if lc.get("torn") else ""
    after = sum(a["rows"] for a in lc.get("after_month", {}).values())
    head = (f"Ledger rows read {lc['read']}, used {lc['used']}, other months {lc['other_months']} (after {month}: "
            f"{after}), skipped {len(lc['skipped'])}.{torn}")
    lines = [head, ""]
    if lc.get("after_month"):
        lines += [f"## Rows dated after {month} (ignored)", ""]
        for m, a in sorted(lc["after_month"].items()):
            span = a["first"] if a["rows"] == 1 else f"{a['first']} … {a['last']}"
            lines.append(f"- {m}: {a['rows']} row{'s' if a['rows'] > 1 else ''}, {span}")
        lines.append("")
    return lines


def _scores_md(s: dict[str, Any]) -> str:
    """A month's scores (``_scores``) in words: a month with no scored reaction has no mean to print."""
    if not s["n"]:
        return "no scored reaction"
    return f"{s['n']} scored, mean {s['mean']}, {s['positive']} positive, {s['negative']} negative"


def to_markdown(rep: dict[str, Any]) -> str:
    """The report as Markdown for the monthly review meeting."""
    m, pm = rep["month"], rep["previous_month"]
    cur, prev = rep["emojis"][m]["net"], rep["emojis"][pm]["net"]
    lc = rep["ledger_counts"]
    inp = rep.get("inputs") or {}
    lines = [f"# Reaction mapping/reward review {m}", "",
             (f"Generated {rep.get('generated_at')} from {inp.get('ledger')} (sha256 {inp.get('ledger_sha256')}) "
              + (f"and {inp.get('mapping')} (sha256 {inp.get('mapping_sha256')})." if inp.get("mapping_sha256") else
                 f"and the built-in default mapping: no mapping file at {inp.get('mapping')}.")), "",
             f"Mapping version {rep['mapping_version']}.", "", *_ledger_md(lc, m),
             *([f"**Review failed: {rep['problem']}.**", ""] if rep.get("problem") else []),
             *([f"**{m} is not over at {rep.get('generated_at')}: its counts and rules read part of the month.**", ""]
               if rep.get("month_over") is False else []),
             f"## Distribution ({m} vs {pm})", "", "| emoji | " + m + " | " + pm + " |", "|---|---:|---:|"]
    for e in sorted(set(cur) | set(prev), key=lambda k: -(cur.get(k, 0) + prev.get(k, 0))):
        lines.append(f"| {e} | {cur.get(e, 0)} | {prev.get(e, 0)} |")
    d = rep["drift"]
    verdict = f"not tested: {d['note']}" if d.get("note") else "**drifted**" if d["drifted"] else "no significant drift"
    measured = (f"total variation {d.get('tvd')}, chi-square p {d.get('chi2_p')} → " if d.get("tvd") is not None
                else "")  # a test not run has no figures: "total variation None" read as a value
    lines += ["", f"Drift: {measured}{verdict}.", "",
              (f"Scores under the current mapping: {_scores_md(rep['scores'][m])} (previous: "
               f"{_scores_md(rep['scores'][pm])})."), "",
              *_rules_md(rep.get("rules") or {}), "", "## Unmapped emojis", ""]
    lines += [f"- {e}: {n}" for e, n in rep["unmapped"].items()] or ["- none"]
    lines += ["", "## Proposed mapping changes (for review; not applied)", ""]
    lines += [f"- {p['change']} {p['emoji']} → {p['proposed_score']}: {p['why']}" for p in rep["proposals"]] or ["- none"]
    if lc["skipped"]:
        lines += ["", "## Skipped ledger rows", ""] + [f"- {s}" for s in lc["skipped"][:50]]
    return "\n".join(lines) + "\n"
