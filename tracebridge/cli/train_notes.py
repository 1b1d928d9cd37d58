"""What ``tracebridge train`` says of each finished trial: its headline numbers (the ``--json`` summary's
``trials``) and the stderr notes on rows it left out or changed: quarantined by the bundle check, dropped
by TRL past ``max_length``, fitted by ``data.fit_context``, and prompts ``eval.fit_context`` fitted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


def headline(r: dict[str, Any]) -> dict[str, Any]:
    from tracebridge.report.results import _clean

    return _clean({k: v for k, v in r.items() if "/" in k and not k.endswith(("_lo", "_hi"))} | {
        k: r.get(k) for k in ("role", "variant", "seed", "checkpoint_dir", "wall_s")})


def warn_trial_notes(r: dict[str, Any], base: Any) -> None:
    """Stderr lines for a trial whose bundle check quarantined rows of the role's views (how many, the
    first reason, the file that lists each); per recipe that trained on part of its rows (TRL drops a row with no trainable
    token left after truncation, and realistic chat sessions often run past max_length) or on rows
    whose oldest context ``data.fit_context`` dropped to fit max_length; and what ``eval.fit_context``
    did to the evaluated prompts and pairs (``eval_items.json``'s ``extra.fit_context``)."""
    trial = f"{base.role}-{r.get('variant')}-s{r.get('seed')}"
    if quarantined := r.get("data/quarantined"):
        typer.echo(f"warning: {trial}: {quarantined} of {r.get('data/read')} rows of the role's views quarantined "
                   f"(neither trained nor evaluated): {_first_reason(r)}; each with its file:line and reason in "
                   f"{Path(str(r.get('trial_dir'))) / 'quarantine.jsonl'}", err=True)
    if r.get("variant") == "optimized" and r.get("dpo/steps") is None:  # said only in an INFO log line before
        typer.echo(f"warning: {trial}: ran no DPO: the bundle has no valid {base.role} preference pair in the train "
                   f"split (a quarantined pair is counted above); this trial's model is the curated SFT one", err=True)
    for name, key in (("sft", "train"), ("dpo", "dpo")):
        dropped, rows = r.get(f"{name}/rows_dropped") or 0, r.get(f"{name}/rows") or 0
        fitted, limit = r.get(f"{name}/rows_fitted") or 0, f"{key}.max_length={getattr(base, key).max_length}"
        if fitted:
            typer.echo(f"note: {trial}: {name} fitted {fitted} of {rows} rows to {limit} by dropping their oldest "
                       "context messages (data.fit_context)", err=True)
        if dropped:
            fix = "" if base.data.fit_context else "set data.fit_context=true, "
            typer.echo(f"warning: {trial}: {name} trained on {rows - dropped} of {rows} rows ({dropped} longer than "
                       f"{limit} kept no trainable token); raise {key}.max_length, {fix}or export with "
                       "views.context_max_chars / views.tool_output_max_chars", err=True)
    if r.get(f"{base.role}/eval_prompts_fitted"):
        from tracebridge.eval.offline import fit_lengths
        from tracebridge.eval.settings import fit_note

        try:
            fit = json.loads(Path(r["eval_items_path"]).read_text())["extra"]["fit_context"]
        except (OSError, KeyError, TypeError, ValueError):  # no items file: the total alone
            fit = {"fitted": r[f"{base.role}/eval_prompts_fitted"], "prompts": r.get(f"{base.role}/eval_rows"),
                   "max_length": fit_lengths(base)[0]}
        typer.echo(fit_note(trial, fit, base.data.fit_context), err=True)


def _first_reason(r: dict[str, Any]) -> str:
    """The first quarantined row's ``where: reason`` from the trial's ``quarantine.jsonl`` (or why not)."""
    try:
        with (Path(str(r.get("trial_dir"))) / "quarantine.jsonl").open() as fh:
            first = json.loads(fh.readline())
        return f"first {first['where']}: {first['reason']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "the trial folder's quarantine.jsonl cannot be read"


def eval_rows(data: Any) -> dict[str, Any]:
    """``eval --json``'s ``data``: rows of the role's views read and quarantined (where and why each)."""
    return {"read": data.read, "quarantined": len(data.quarantined),
            "quarantine": [{"where": q.where, "reason": q.reason} for q in data.quarantined]}


def warn_eval_quarantine(bundle: Path, data: Any) -> None:
    """A stderr line when the bundle check quarantined rows of the role's views (not evaluated)."""
    if data.quarantined:
        first = data.quarantined[0]
        typer.echo(f"warning: {bundle}: {len(data.quarantined)} of {data.read} rows of the role's views quarantined "
                   f"(not evaluated): first {first.where}: {first.reason}; --json lists each", err=True)
