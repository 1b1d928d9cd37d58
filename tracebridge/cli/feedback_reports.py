"""The feedback commands that read the files and report (``tracebridge feedback labels``, ``audit``): the join
per run, with the lines it could not use, and the daily audit (JSON + Markdown; exit 1 when the harvest did not
run that day). The command group, its options and helpers are in ``tracebridge.cli.feedback``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated

import typer

from tracebridge.cli.app import check_out_dir, fail, print_json
from tracebridge.cli.feedback import (
    ConfigOpt,
    JsonOpt,
    LedgerOpt,
    MappingOpt,
    Overrides,
    RegistryOpt,
    _cfg,
    _named,
    feedback_app,
)


@feedback_app.command("labels")
def labels(config: ConfigOpt = None, ledger: LedgerOpt = None, mapping: MappingOpt = None,
           registry: RegistryOpt = None, overrides: Overrides = None, json_out: JsonOpt = False) -> None:
    """Join the ledger with the chunk registry: feedback labels per run and event.

    Unusable ledger and registry lines are reported (counts, ``file:line:field: problem``) as the
    audit reports them; like the audit, they do not fail the command. A ledger that is not there exits 2
    naming it: read as empty, a typo'd path gave a report of no reactions that looked like a real one.
    """
    from tracebridge.feedback.bots import NO_BOT
    from tracebridge.feedback.join import labels_report

    cfg = _cfg(config, overrides, ledger=ledger, mapping=mapping, registry=registry)
    if not Path(cfg.ledger).is_file():
        what = "a folder" if Path(cfg.ledger).is_dir() else "no such file"
        fail(f"{_named('--ledger', ledger, cfg.ledger)}: {what}; give the reaction ledger `tracebridge feedback "
             "harvest` writes", 2)
    try:
        doc = labels_report(cfg.ledger, cfg.mapping, cfg.registry, cfg.other_chunks, cfg.legacy_bot_id,
                            os.environ.get(cfg.user_salt_env) or None)
    except ValueError as exc:
        fail(str(exc), 2)
    if json_out:
        print_json(doc)
        return
    for run_id, lab in sorted(doc["runs"].items()):
        fb = lab["run"]["feedback"]
        typer.echo(f"{run_id}: score {fb['score']} from {fb['n']} reactions on {len(lab['events'])} events")
    rx = doc["reactions"]
    if problem := doc["private_chats"].get("problem"):
        typer.echo(f"warning: {problem}", err=True)
    if fix := doc["private_chats"].get("fix"):
        typer.echo(f"note: {doc['private_chats']['in_clear']} ledger and registry rows keep private chat ids in the "
                   f"clear; {fix}", err=True)
    typer.echo(f"reactions present {rx['present']}: joined {rx['joined']}, orphans {rx['orphans']} (on messages in no "
               f"registered batch), ignored {rx['ignored']} (other_chunks={rx['other_chunks']}), shared "
               f"{rx['shared']} (another of our bots' copy counts)")
    for o in rx["orphan_samples"][:10]:
        bot = f" (bot {o['bot']})" if "bot" in o else ""
        typer.echo(f"  orphan: chat {o['chat']} message {o['message_id']} {o['emoji']}{bot}")
    for bot, b in doc["bots"].items() if set(doc["bots"]) - {NO_BOT} else ():  # several bots share the files
        typer.echo(f"bot {bot}: ledger rows {b['rows']}, reactions present {b['present']} (joined {b['joined']}, "
                   f"{b['for_other_bots']} of them on other bots' messages; orphans {b['orphans']}, ignored "
                   f"{b['ignored']}, shared {b['shared']})")
    for name in ("ledger", "registry"):
        b = doc[name]
        typer.echo(f"{name} {b['path']}: read {b['read']}, usable {b['usable']}, unusable {b['unusable']}")
        for line in b["skipped"]:
            typer.echo(f"  {line}")


@feedback_app.command("audit")
def audit(
    day: Annotated[str, typer.Option("--day", help="UTC day YYYY-MM-DD (default: yesterday).")] = "",
    config: ConfigOpt = None, ledger: LedgerOpt = None, mapping: MappingOpt = None, registry: RegistryOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for <day>.json/.md (overrides audit_dir).")] = None,
    overrides: Overrides = None, json_out: JsonOpt = False,
) -> None:
    """Audit one day of reactions (JSON + Markdown); exit 1 when the harvest did not run that day."""
    from tracebridge.feedback.audit import write_audit

    cfg = _cfg(config, overrides, ledger=ledger, mapping=mapping, registry=registry, audit_dir=out)
    try:
        when = dt.date.fromisoformat(day) if day else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    except ValueError:
        fail(f"--day {day!r}: expected YYYY-MM-DD", 2)
    check_out_dir(Path(cfg.audit_dir), "--out" if out else "audit_dir")  # was "[Errno 17] File exists: 'x'"
    if ledger is not None and not Path(cfg.ledger).exists():  # a mistyped --ledger read as "the harvest never ran"
        fail(f"--ledger {ledger}: no such file (the reaction ledger the harvest writes; without --ledger the "
             "config's, which may not exist yet before the first harvest: the audit then fails, exit 1)", 2)
    try:
        doc, jp, mp = write_audit(cfg, when)
    except (ValueError, OSError) as exc:  # OSError: an --out or audit_dir that cannot be written
        fail(str(exc), 2)
    doc["files"] = {"json": str(jp), "markdown": str(mp)}
    if json_out:
        print_json(doc)
    else:
        typer.echo(mp.read_text(encoding="utf-8"))
    raise typer.Exit(0 if doc["passed"] else 1)
