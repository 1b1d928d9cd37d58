"""The single-file ``report.html``: tables and inline SVG plots from ``results.json`` content.

Sections: a stamp line (sweep, trials finished and failed, nodes, GPU-hours, cost estimate), summary (winner
per role), per role: metric table with intervals per variant, each variant's elapsed and summed trial time, interval plot per variant, paired differences
(optimized − baseline) plot, closed-loop metrics, loss curves, ablation heatmaps; the failed
trials with their reasons; then the manifest stamp. No scripts, no external resources.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from tracebridge.report.results import variant_wall
from tracebridge.report.svg import heatmap, interval_plot, line_chart

CSS = """body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f4f4f4}.win{color:#2ca02c;font-weight:bold}.none{color:#888}code{font-size:12px}
h2{border-bottom:2px solid #1f77b4;padding-bottom:2px}section{margin-bottom:28px}"""


def _f(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.3f}" if isinstance(v, float) else escape(str(v))


def _est(e: dict[str, Any] | None) -> str:
    if not e:
        return "–"
    return f"{_f(e.get('value'))} <small>[{_f(e.get('lo'))}, {_f(e.get('hi'))}] n={e.get('n', 0)}</small>"


def _is_rate(name: str) -> bool:
    return name not in ("reward_margin", "uplift_vs_majority") and not name.startswith("cl_action_eff")


def metric_table(block: dict[str, Any]) -> str:
    """A role's metric table: one column per variant, plus the paired difference when compared; ★
    marks the primary metric, † the guarded ones."""
    variants = sorted(block["variants"])
    names = sorted({m for v in variants for m in block["variants"][v]["metrics"]})
    comp = block.get("comparison") or {}
    head = "".join(f"<th>{escape(v)}</th>" for v in variants) + ("<th>optimized − baseline</th>" if comp else "")
    rows = []
    for m in names:
        cells = "".join(f"<td>{_est(block['variants'][v]['metrics'].get(m))}</td>" for v in variants)
        if comp:
            cells += f"<td>{_est(comp.get(m))}</td>"
        mark = " ★" if m == block["primary"] else " †" if m in block["guarded"] else ""
        rows.append(f"<tr><td>{escape(m)}{mark}</td>{cells}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


def wall_line(block: dict[str, Any]) -> str:
    """Per variant: the elapsed time (first trial start to last trial end) and the trials' own seconds
    summed, which is larger when trials ran side by side; an older results.json has only the sum."""
    parts = []
    for v in sorted(block["variants"]):
        elapsed, summed, source = variant_wall(block["variants"][v])
        why = escape(source.removeprefix("unknown: "))
        shown = f"{_f(elapsed)} s elapsed" if elapsed is not None else f"elapsed not known ({why})"
        parts.append(f"{escape(v)}: {shown}, {_f(summed)} s of trial time summed")
    return f"<p class='wall'>Time · {' · '.join(parts)}</p>" if parts else ""


def pairing_list(block: dict[str, Any]) -> str:
    """How the comparison paired its items, where not simply by item id: problems (items left out)
    and notes (paired by position)."""
    lines = [f"<li class='problem'>{escape(p)}</li>" for p in block.get("comparison_problems") or []]
    lines += [f"<li>{escape(n)}</li>" for n in block.get("comparison_notes") or []]
    return f"<p>Pairing of optimized and baseline items:</p><ul>{''.join(lines)}</ul>" if lines else ""


def role_plots(role: str, block: dict[str, Any], ci: float = 0.95) -> list[str]:
    """A role's SVG plots: the rate metrics with their ``ci`` intervals per variant, and the paired
    differences when compared."""
    out = []
    rows = [(m, v, e["value"], e["lo"], e["hi"]) for v in sorted(block["variants"])
            for m, e in sorted(block["variants"][v]["metrics"].items()) if _is_rate(m) and e.get("n")]
    rows.sort(key=lambda r: (r[0], r[1]))
    if rows:
        out.append(interval_plot([(a, b, *(x if x is not None else float("nan") for x in r)) for a, b, *r in rows],
                                 f"{role}: metrics with {round(ci * 100, 2):g}% intervals", kind="metrics"))
    comp = block.get("comparison") or {}
    drows = [(m, "optimized − baseline", e["value"], e["lo"], e["hi"]) for m, e in sorted(comp.items()) if e.get("n")]
    if drows:
        out.append(interval_plot([(a, b, *(x if x is not None else float("nan") for x in r)) for a, b, *r in drows],
                                 f"{role}: paired differences", zero_line=True, kind="differences"))
    return out


def loss_plots(role: str, trials: list[dict[str, Any]]) -> list[str]:
    """One SVG loss chart per phase (SFT, DPO) that has curves, a line per trial."""
    from tracebridge.report.cost import distinct_runs

    out = []
    for phase in ("sft", "dpo"):
        series = []
        for t in distinct_runs(trials):  # a run shared by grid cells: one line, named by its run
            pts = [(p["step"], p["loss"]) for p in t.get("loss_curve") or [] if p.get("phase") == phase]
            if pts:
                ab = ",".join(f"{k}={v}" for k, v in sorted((t.get("ablation") or {}).items()))
                name = t["trained_as"] if t.get("trained_as") else f"{t['variant']} s{t.get('seed')}{(' ' + ab) if ab else ''}"
                lost = sum(1 for _, y in pts if not isinstance(y, (int, float)) or not math.isfinite(y))
                series.append((f"{name} (loss NaN at {lost} of {len(pts)})" if lost else name, pts))  # no point there
        if series:
            out.append(line_chart(series, f"{role}: {phase.upper()} loss", kind="loss"))
    return out


def notes_list(block: dict[str, Any]) -> str:
    """The role's ``trial_notes``: trials whose loss went NaN or that evaluated no item."""
    lines = "".join(f"<li class='problem'>{escape(n)}</li>" for n in block.get("trial_notes") or [])
    return f"<p>Trials to look at before reading the tables and plots:</p><ul>{lines}</ul>" if lines else ""


def shared_line(trials: list[dict[str, Any]]) -> str:
    """The runs a sweep trained once for several grid cells (``trained_as``): which, and for which cells."""
    runs: dict[str, list[str]] = {}
    for t in trials:
        if t.get("trained_as"):
            runs.setdefault(str(t["trained_as"]), []).append(str(t.get("trial_id")))
    items = "".join(f"<li><code>{escape(r)}</code> for {', '.join(f'<code>{escape(c)}</code>' for c in cells)}</li>"
                    for r, cells in runs.items())
    return ("<p>Trained once for several cells (their configs differ only in keys this variant never reads, e.g. "
            f"<code>dpo.*</code> for a baseline); each cell lists the same result:</p><ul>{items}</ul>") if runs else ""


def ablation_plots(block: dict[str, Any]) -> list[str]:
    """One SVG heatmap per ablation group of the role that has rows."""
    return [heatmap(g["rows"], g["cols"], g["values"], f"{g['metric']} by {g['key']}", row_label=g["key"],
                    col_label="variant" if "×" not in g["key"] else g["key"].split(" × ")[1], kind="ablation")
            for g in block.get("ablations") or [] if g["rows"]]


def manifest_table(manifest: dict[str, Any]) -> str:
    """The manifest stamp as an HTML table: ids, cost estimate, cluster nodes and hardware."""
    keys = ["report_id", "sweep_id", "bundle_id", "bundle_ids", "config_hash", "code_version", "model", "seeds",
            "wall_s", "wall_s_source", "trial_wall_s", "gpu_hours", "created_at"]
    rows = "".join(f"<tr><td>{escape(k)}</td><td><code>{_f(manifest.get(k))}</code></td></tr>" for k in keys)
    cost = manifest.get("cost_estimate") or {}
    rows += "".join(f"<tr><td>cost_estimate.{escape(k)}</td><td><code>{_f(v)}</code></td></tr>" for k, v in cost.items())
    for node, n in ((manifest.get("cluster") or {}).get("nodes") or {}).items():
        rows += (f"<tr><td>cluster.nodes.{escape(node)}</td><td><code>{n.get('trials')} trial(s), "
                 f"{_f(n.get('gpus'))} GPU(s) {_f(n.get('gpu_type'))}, {_f(n.get('gpu_hours'))} GPU-h</code></td></tr>")
    hw = manifest.get("hardware") or {}
    rows += "".join(f"<tr><td>hardware.{escape(k)}</td><td><code>{_f(v)}</code></td></tr>" for k, v in hw.items())
    return f"<table>{rows}</table>"


def failed_section(failed: list[dict[str, Any]]) -> str:
    """The trials that failed, each with its reason (results.json ``failed_trials``); empty when none did."""
    if not failed:
        return ""
    rows = "".join(f"<tr><td><code>{escape(str(f.get('trial_id') or f.get('trial_dir') or '?'))}</code></td>"
                   + "".join(f"<td>{_f(f.get(k))}</td>" for k in ("role", "variant", "seed"))
                   + f"<td>{escape(', '.join(f'{k}={v}' for k, v in sorted((f.get('ablation') or {}).items())))}</td>"
                   + f"<td><code>{_f(f.get('error_type'))}</code></td>"
                   + f"<td>{escape(str(f.get('error_message') or f.get('reason')))}</td></tr>" for f in failed)
    return (f"<section id='failed'><h2>Failed trials ({len(failed)})</h2><p>Not in the tables, plots or winners "
            "above: they have no result. results.json <code>failed_trials</code> holds each one's whole error and "
            "the config it trained with.</p><table><tr><th>trial</th><th>role</th><th>variant</th><th>seed</th>"
            f"<th>ablation</th><th>error type</th><th>reason</th></tr>{rows}</table></section>")


def stamp_line(manifest: dict[str, Any], failed: int = 0) -> str:
    """One line under the title: sweep, trials (and how many failed) and nodes, GPU-hours, cost estimate."""
    cost = manifest.get("cost_estimate") or {}
    usd = f"${cost['usd']:.2f}" if cost.get("usd") is not None else f"n/a ({cost.get('reason', 'no estimate')})"
    nodes = (manifest.get("cluster") or {}).get("nodes") or {}
    retried = sum(1 for t in manifest.get("trials") or [] if isinstance(t.get("attempts"), int) and t["attempts"] > 1)
    return (f"<p class='stamp'>sweep <code>{_f(manifest.get('sweep_id'))}</code> · "
            f"{len(manifest.get('trials') or [])} trial(s)"
            + (f" finished, <a href='#failed'>{failed} failed</a>" if failed else "")
            + (f" ({retried} retried: every attempt counts in the GPU-hours)" if retried else "")
            + f" on {len(nodes)} node(s) · "
            f"GPU-hours {float(manifest.get('gpu_hours') or 0.0):.3f}"
            + (f" ({float(manifest['gpu_hours_failed']):.3f} in failed trials)" if manifest.get("gpu_hours_failed") else "")
            + f" · cost estimate {escape(usd)}"
            + (f" (${cost['usd_failed']:.2f} in failed trials)" if cost.get("usd_failed") else "") + "</p>")


def render_html(results: dict[str, Any], manifest: dict[str, Any], title: str = "TraceBridge report") -> str:
    """The whole page as one string."""
    parts = [(f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
              f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>"
              f"{stamp_line(manifest, len(results.get('failed_trials') or []))}")]
    summary = "".join(
        f"<tr><td>{escape(r)}</td><td>{escape(b['primary'])}</td><td class='{'win' if b.get('winner') else 'none'}'>"
        f"{escape(str(b.get('winner') or 'none'))}</td><td>{escape(b.get('winner_reason', ''))}</td></tr>"
        for r, b in results["roles"].items())
    parts.append("<section><h2>Winners</h2><p>A variant wins a role only when the paired interval of its uplift "
                 "on the primary metric (★) excludes zero and no guarded metric (†) regresses significantly.</p>"
                 f"<table><tr><th>role</th><th>primary</th><th>winner</th><th>why</th></tr>{summary}</table></section>")
    for role, block in results["roles"].items():
        trials = [t for t in results.get("trials", []) if t.get("role") == role]
        parts.append(f"<section id='role-{escape(role)}'><h2>{escape(role)}</h2>{metric_table(block)}"
                     + wall_line(block) + notes_list(block) + pairing_list(block) + shared_line(trials))
        parts += role_plots(role, block, results.get("ci") or 0.95) + loss_plots(role, trials) + ablation_plots(block)
        parts.append("</section>")
    parts.append(failed_section(results.get("failed_trials") or []))
    parts.append(f"<section><h2>Manifest</h2>{manifest_table(manifest)}</section></body></html>")
    return "\n".join(parts)
