"""``tracebridge feedback migrate``: rewrite the private chat ids older versions left in the clear in the feedback
files (ledger, chunk registry, quarantine, daily audits) with the users' pseudonyms (``feedback.migrate``).
The command group, its options and helpers are in ``tracebridge.cli.feedback``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracebridge.cli.app import EXIT_FAILED, fail, print_json
from tracebridge.cli.feedback import (
    ConfigOpt,
    JsonOpt,
    LedgerOpt,
    Overrides,
    RegistryOpt,
    _cfg,
    _named,
    _write_error,
    feedback_app,
)


@feedback_app.command("migrate")
def migrate(
    config: ConfigOpt = None, ledger: LedgerOpt = None, registry: RegistryOpt = None,
    out: Annotated[Path | None, typer.Option("--audit-dir", help="The daily audits' folder (overrides audit_dir).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would change; write nothing.")] = False,
    overrides: Overrides = None, json_out: JsonOpt = False,
) -> None:
    """Rewrite the private chat ids (the users' Telegram ids) that older versions kept in the clear in the ledger,
    chunk registry, quarantine, harvest log and daily audits, as the users' salted pseudonyms (the harvest's salt).
    Each file is replaced whole under its lock; the counts (per file: read = changed + unchanged + unreadable) are
    appended to migrations.jsonl beside the ledger. Running it again changes nothing. Exit 2, rewriting nothing, without
    the salt or when the ledger's or registry's rows were pseudonymised under another salt."""
    from tracebridge.feedback.migrate import migrate_private_chats

    cfg = _cfg(config, overrides, ledger=ledger, registry=registry, audit_dir=out)
    for flag, given, path in (("--ledger", ledger, cfg.ledger), ("--registry", registry, cfg.registry)):
        if Path(path).is_dir():
            fail(f"{_named(flag, given, path)}: a folder; give the file", 2)
    if not any(Path(f).is_file() for f in (cfg.ledger, cfg.registry, cfg.quarantine)) and not Path(cfg.audit_dir).is_dir():
        fail(f"nothing to migrate: no {_named('--ledger', ledger, cfg.ledger)}, {_named('--registry', registry, cfg.registry)}, "
             f"quarantine={cfg.quarantine} or {_named('--audit-dir', out, cfg.audit_dir)}; give the feedback files' paths "
             "(--config, or the key=value overrides the harvest takes)", 2)
    try:
        doc = migrate_private_chats(cfg, dry_run=dry_run)
    except ValueError as exc:
        fail(str(exc), 2)
    except OSError as exc:  # a file that cannot be read or replaced (no permission, a full disk): it is as it was
        where = str(exc.filename or cfg.ledger)
        fail(f"{_write_error(where, where, exc)}; the files before it were rewritten and stay so, this one and those "
             "after it are as they were: fix it and run migrate again (it rewrites only what is left)", EXIT_FAILED)
    if json_out:
        print_json(doc)
        return
    verb = "would rewrite" if dry_run else "rewrote"
    for f in doc["files"]:
        typer.echo(f"{f['path']} ({f['kind']}): read {f['read']}, {verb} {f['changed']}, unchanged {f['unchanged']}, "
                   f"unreadable (kept as they are) {f['unreadable']}")
    typer.echo(f"{verb} {doc['changed']} private chat ids in the clear as pseudonyms (salt {doc['salt_id']})"
               + (f"; counts appended to {doc['log']}" if doc["log"] else "; nothing written (--dry-run)"))
