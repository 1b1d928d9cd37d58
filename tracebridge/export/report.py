"""The dataset report of an export (``report.json`` + ``report.md``) and the tallies behind it.

``Tally`` accumulates, run by run, everything the report states: run counts that reconcile
(read = accepted + quarantined; accepted = exported + duplicates), quarantine reasons by rule,
redaction results of both passes (counts by type and field, never values), class balance
(verdicts observed and expected, outcomes, failure classes, families, pair sources) and rows
per view and split. Deterministic: no timestamps or paths, keys sorted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field, fields
from typing import Any

from tracebridge.corrections.summary import render_markdown as corrections_markdown
from tracebridge.curate.config import SPLITS, BalanceConfig
from tracebridge.schema.roles import VERDICTS


def _nested(d: dict[str, Counter[str]]) -> dict[str, dict[str, int]]:
    return {k: dict(sorted(v.items())) for k, v in sorted(d.items())}


@dataclass
class Tally:
    """Counters of one export."""

    runs_read: int = 0
    events_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    exported: int = 0
    quarantine_rules: Counter[str] = field(default_factory=Counter)
    allowed_rules: Counter[str] = field(default_factory=Counter)
    pass1_capture: int = 0
    pass1_export: int = 0
    capture_policies: Counter[str] = field(default_factory=Counter)
    capture_findings: Counter[str] = field(default_factory=Counter)
    pass1_findings: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    pass2_scanned: int = 0
    pass2_blocked: int = 0
    pass2_findings: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    outcomes: Counter[str] = field(default_factory=Counter)
    failure_classes: Counter[str] = field(default_factory=Counter)
    families: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    verdicts_observed: Counter[str] = field(default_factory=Counter)
    verdicts_expected: Counter[str] = field(default_factory=Counter)
    pair_sources: Counter[str] = field(default_factory=Counter)
    tool_sources: Counter[str] = field(default_factory=Counter)  # runs by the labels.tool_source their rows carry
    view_skips: Counter[str] = field(default_factory=Counter)
    view_trims: Counter[str] = field(default_factory=Counter)  # rows trimmed per budget (views.TRIMMED)
    tool_cuts: Counter[str] = field(default_factory=Counter)  # tool results cut, characters cut (views.TOOL_OUTPUTS)
    feedback_runs: int = 0  # exported runs the feedback seam gave labels (reactions joined)
    feedback_events: int = 0  # events of those runs with labels of their own
    feedback_quarantined: int = 0  # quarantined runs the join labelled: their labels reach no row
    feedback_duplicates: int = 0  # duplicate runs the join labelled: their cluster's kept run does not carry them
    events_dropped: int = 0  # events recorders dropped (session.json capture.events_dropped) in the runs read
    runs_with_dropped_events: int = 0  # runs read that count any: rule events_dropped (quarantined or allowed)

    def merge(self, other: Tally) -> None:
        """Add ``other``'s counts (the tally of one run curated on its own, e.g. in a worker). A run's
        tally holds a few counts of its 32: the zeros and empty counters add nothing and are passed
        over (an export merges two tallies a run; ``fields`` and an update of each took ~0.6% of its CPU)."""
        for name in _TALLY_FIELDS:
            theirs = getattr(other, name)
            if not theirs:
                continue
            mine = getattr(self, name)
            if isinstance(mine, int):
                setattr(self, name, mine + theirs)
            elif isinstance(mine, Counter):
                mine.update(theirs)
            else:
                for k, c in theirs.items():
                    mine[k].update(c)

    def add_findings(self, target: dict[str, Counter[str]], found: dict[tuple[str, str], int]) -> None:
        """Add findings ``{(type, field): n}`` into ``target`` (``{type: {field: n}}``)."""
        for (kind, path), n in found.items():
            target[kind][path] += n

    def add_rows(self, views: dict[str, list[dict[str, Any]]]) -> None:
        """Class balance of one exported run's rows, and where their tool schemas came from: the run
        counts once under each ``labels.tool_source`` its rows carry (an Agent Lightning run whose
        calls recorded their schemas is ``recorded``, one mixing recorded and inferred calls counts
        under both; a run whose rows carry none is not counted)."""
        sources = {str(lab["tool_source"]) for rows in views.values() for r in rows
                   if isinstance(lab := (r.get("meta") or {}).get("labels"), dict) and lab.get("tool_source")}
        self.tool_sources.update(sources)
        for r in views.get("verifier_sft", []):
            lab = r["meta"]["labels"]
            self.verdicts_observed[str(lab.get("verdict"))] += 1
            self.verdicts_expected[str(lab.get("expected_verdict", "unknown"))] += 1
        for key in ("planner_pref_pairs", "verifier_pref_pairs", "worker_recovery_cases/pairs"):
            for r in views.get(key, []):
                self.pair_sources[str(r["meta"]["labels"].get("pair_source"))] += 1

    def reconcile(self) -> list[str]:
        """Count identities that must hold (empty = they do)."""
        out = []
        if self.runs_read != self.accepted + self.quarantined:
            out.append(f"runs read {self.runs_read} != accepted {self.accepted} + quarantined {self.quarantined}")
        if self.accepted != self.exported + self.duplicates:
            out.append(f"accepted {self.accepted} != exported {self.exported} + duplicates {self.duplicates}")
        return out

    def redaction(self, enabled: bool, policy: str) -> dict[str, Any]:
        """The redaction section (also the bundle's ``data_governance``)."""
        # every accepted run went through pass 1 (capture or here) and passed pass 2; blocked ones were quarantined
        clean = enabled and self.pass2_scanned - self.pass2_blocked == self.accepted
        return {"redaction_policy": policy if enabled else None,
                "pii_scan": "clean" if clean else ("not_run" if not enabled else "findings"),
                "passed_both": bool(clean and self.accepted > 0),
                "passes": [
                    {"stage": "capture", "runs": self.pass1_capture, "policies": dict(sorted(self.capture_policies.items())),
                     "findings_by_type": dict(sorted(self.capture_findings.items()))},
                    {"stage": "curation:pass1", "runs": self.pass1_export, "policy": policy if enabled else None,
                     "findings": _nested(self.pass1_findings)},
                    {"stage": "curation:pass2", "runs_scanned": self.pass2_scanned, "runs_blocked": self.pass2_blocked,
                     "policy": policy if enabled else None, "findings": _nested(self.pass2_findings)},
                ]}


_TALLY_FIELDS = tuple(f.name for f in fields(Tally))


def balance_checks(t: Tally, cfg: BalanceConfig, verifier_target: str = "observed") -> list[dict[str, Any]]:
    """Each class's share against its floor (``cfg``): verifier verdicts of the rows' targets
    (``views.verifier_sft_target``) and run outcomes (known ones). A group with fewer than
    ``cfg.min_count`` rows or runs is not judged (``skipped`` says why) and passes."""
    verdicts = t.verdicts_expected if verifier_target == "ex_post" else t.verdicts_observed
    out: list[dict[str, Any]] = []
    for group, counts, classes, floor in (("verifier_verdict", verdicts, VERDICTS, cfg.min_verdict_share),
                                          ("run_outcome", t.outcomes, ("success", "failure"), cfg.min_outcome_share)):
        total = sum(counts[c] for c in classes)
        for c in classes:
            share = counts[c] / total if total else 0.0
            chk: dict[str, Any] = {"check": f"{group}:{c}", "count": counts[c], "of": total,
                                   "share": round(share, 4), "min_share": floor}
            if total < cfg.min_count:
                chk["skipped"] = f"{total} < balance.min_count={cfg.min_count}"
            chk["passed"] = "skipped" in chk or share >= floor
            out.append(chk)
    return out


def balance_failures(checks: list[dict[str, Any]]) -> list[str]:
    """One line per failed check: ``verifier_verdict:end 2.1% (3 of 140) < 10%``."""
    return [f"{c['check']} {c['share']:.1%} ({c['count']} of {c['of']}) < {c['min_share']:.0%}"
            for c in checks if not c["passed"]]


def class_balance(t: Tally, cfg: BalanceConfig | None = None, verifier_target: str = "observed") -> dict[str, Any]:
    """The report's class-balance section: the counts, then the checks and whether all passed."""
    fams = {f: dict(sorted(c.items())) for f, c in sorted(t.families.items())}
    checks = balance_checks(t, cfg or BalanceConfig(), verifier_target)
    return {"verifier_verdicts_observed": dict(sorted(t.verdicts_observed.items())),
            "verifier_verdicts_expected": dict(sorted(t.verdicts_expected.items())),
            "outcomes": dict(sorted(t.outcomes.items())), "failure_classes": dict(sorted(t.failure_classes.items())),
            "families": fams, "pair_sources": dict(sorted(t.pair_sources.items())),
            "checks": checks, "passed": all(c["passed"] for c in checks)}


def tool_outputs(t: Tally, max_chars: int) -> dict[str, int]:
    """The tool-output budget and what it cut: ``cut`` tool results (each once, however many rows carry
    it) and ``chars_cut`` characters in all (the sum of the numbers their cut markers name)."""
    return {"max_chars": max_chars, "cut": t.tool_cuts["tool_outputs_cut"],
            "chars_cut": t.tool_cuts["tool_output_chars_cut"]}


def build_report(t: Tally, rows: dict[str, dict[str, int]], split: dict[str, Any], leakage: dict[str, Any],
                 dedup: dict[str, Any], redaction: dict[str, Any], failures: list[str],
                 balance: dict[str, Any], corrections: dict[str, Any] | None = None,
                 feedback_joined: bool = False, tool_output_max_chars: int = 0) -> dict[str, Any]:
    """The report document (``report.json``); ``corrections`` only when a corrections file was joined,
    ``feedback`` only when reaction labels were (``feedback.ledger``): how many exported runs and
    events got labels, so a join that matched nothing shows as 0, not as silence, and how many labelled
    runs were quarantined or dropped as duplicates (``runs_labelled_not_exported``: their labels reach no row); ``views.tool_outputs``
    only with ``views.tool_output_max_chars`` on (``tool_outputs``)."""
    return {
        "passed": not failures, "failures": failures,
        "runs": {"read": t.runs_read, "accepted": t.accepted, "quarantined": t.quarantined,
                 "duplicates": t.duplicates, "exported": t.exported, "events_read": t.events_read,
                 # only when a run counts some: a report of whole runs stays the same bytes (and the bundle id)
                 **({"events_dropped": t.events_dropped, "runs_with_dropped_events": t.runs_with_dropped_events}
                    if t.runs_with_dropped_events else {})},
        "rows": rows, "split": split, "leakage": leakage, "dedup": dedup, "class_balance": balance,
        "redaction": redaction,
        "quarantine": {"runs": t.quarantined, "by_rule": dict(sorted(t.quarantine_rules.items())),
                       "allowed_by_rule": dict(sorted(t.allowed_rules.items())), "file": "quarantine.jsonl"},
        "views": {"events_without_row": dict(sorted(t.view_skips.items())),
                  "tool_schemas": dict(sorted(t.tool_sources.items())),
                  # only with a budget on: a report without budgets stays the same bytes (and the bundle id)
                  **({"rows_trimmed": dict(sorted(t.view_trims.items()))} if t.view_trims else {}),
                  **({"tool_outputs": tool_outputs(t, tool_output_max_chars)} if tool_output_max_chars else {})},
        **({"corrections": corrections} if corrections is not None else {}),
        **({"feedback": {"runs_exported": t.exported, "runs_labelled": t.feedback_runs,
                         "events_labelled": t.feedback_events,
                         "runs_labelled_not_exported": {"quarantined": t.feedback_quarantined,
                                                        "duplicates": t.feedback_duplicates}}}
           if feedback_joined else {}),
    }


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out + [""]


def render_markdown(rep: dict[str, Any]) -> str:
    """``report.md``: the same facts for people."""
    r = rep["runs"]
    lines = ["# Dataset report", "", f"**{'PASS' if rep['passed'] else 'FAIL'}**"
             + (": " + "; ".join(rep["failures"]) if rep["failures"] else ""), "",
             (f"Runs read {r['read']} = accepted {r['accepted']} + quarantined {r['quarantined']}; "
              f"accepted = exported {r['exported']} + duplicates {r['duplicates']}. Events read {r['events_read']}."), "",
             "## Rows per view and split", ""]
    lines += _table(["view", *SPLITS, "total"],
                    [[v, *(c.get(s, 0) for s in SPLITS), sum(c.values())] for v, c in rep["rows"].items()])
    sp = rep["split"]
    lines += ["## Split", "", f"Method: {sp['method']}; ratios {sp['ratios']}.", ""]
    if sp.get("assign_unmatched"):
        lines += [f"split.assign names no family of these traces, so it fixed nothing: {', '.join(sp['assign_unmatched'])}.",
                  ""]
    lines += _table(["family", "split", "runs"], [[f, s, sp["family_runs"].get(f, 0)]
                                                  for f, s in sp["assignment"].items()])
    lk = rep["leakage"]
    nd = lk["near_duplicates"]
    lines += ["## Leakage", "", (f"Families in several splits: {lk['families_in_several_splits'] or 'none'}; "
                                 f"goal hashes in several splits: {lk['goal_hashes_in_several_splits']}."),
              (f"Near-duplicate prompts across splits ({nd['method']}): {nd['cross_split_near_duplicates']} "
               f"(sampled {nd['sampled']})."), ""]
    dd = rep["dedup"]
    lines += ["## Dedup", "", (f"{dd['method']}: {dd['removed_runs']} runs removed in {dd['clusters_total']} "
                               f"clusters; rows removed {dd['removed_rows']}."), ""]
    lines += _table(["kept run", "removed runs", "removed rows"],
                    [[c["kept_run_id"], c["removed_runs"], c["removed_rows_total"]] for c in dd["clusters"][:20]])
    cb = rep["class_balance"]
    lines += ["## Class balance", ""] + [f"- {k.replace('_', ' ')}: {v}" for k, v in cb.items()
                                         if k not in ("checks", "passed")] + [""]
    lines += _table(["check", "count", "of", "share", "min share", "passed"],
                    [[c["check"], c["count"], c["of"], f"{c['share']:.1%}", f"{c['min_share']:.0%}",
                      c.get("skipped") or ("yes" if c["passed"] else "**no**")] for c in cb["checks"]])
    red = rep["redaction"]
    lines += ["## Redaction", "", (f"Policy `{red['redaction_policy']}`; PII scan **{red['pii_scan']}**; "
                                   f"both passes passed: {red['passed_both']}."), ""]
    for p in red["passes"]:
        lines.append(f"- {p['stage']}: " + ", ".join(f"{k}={v}" for k, v in p.items() if k != "stage"))
    q = rep["quarantine"]
    lines += ["", "## Quarantine", "", f"{q['runs']} runs quarantined (details in {q['file']}).", ""]
    lines += _table(["rule", "runs"], [[k, v] for k, v in q["by_rule"].items()])
    if "feedback" in rep:
        f = rep["feedback"]
        said = (f"{f['runs_labelled']} of {f['runs_exported']} exported runs got labels; "
                f"{f['events_labelled']} events have labels of their own.")
        lost = f.get("runs_labelled_not_exported") or {}
        if any(lost.values()):
            said += (f" Labelled but not exported (their labels are in no row): {lost['quarantined']} quarantined, "
                     f"{lost['duplicates']} duplicates (the kept run of a duplicate's cluster does not take its labels).")
        lines += ["## Feedback (reaction labels)", "", said, ""]
    if "rows_trimmed" in rep["views"]:
        lines += ["## Rows trimmed to budgets", "", ("Rows written with their context or tool results cut to "
                  "views.context_max_chars / views.tool_output_max_chars (context_over_budget: still over it "
                  "with the user turn alone)."), ""]
        lines += _table(["budget", "rows"], [[k, v] for k, v in rep["views"]["rows_trimmed"].items()])
    if "tool_outputs" in rep["views"]:
        to = rep["views"]["tool_outputs"]
        lines += ["", (f"Tool outputs over views.tool_output_max_chars={to['max_chars']}: {to['cut']} cut to head "
                       f"and tail, {to['chars_cut']} characters cut in all (each output counted once)."), ""]
    if "corrections" in rep:
        lines += corrections_markdown(rep["corrections"])
    return "\n".join(lines) + "\n"
