"""Telegram reaction feedback commands (``tracebridge feedback ...``).

``harvest`` (getUpdates dumps and/or OpenClaw transcripts → ledger), ``serve`` (loopback
webhook), ``mapping show|init|set``, ``chunks record``, ``labels`` (the join, per run) and
``audit --day D`` (JSON + Markdown; exits 1 when the harvest did not run that day; those two in
``tracebridge.cli.feedback_reports``). Paths and
the join rule come from ``configs/feedback/*.yaml`` (``--config``), ``--ledger``/``--mapping``/
``--registry`` and ``key=value`` overrides. Exit 2 on bad input.
"""

from __future__ import annotations

import errno
import math
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from tracebridge.cli.app import EXIT_FAILED, app, config_errors, fail, print_json

feedback_app = typer.Typer(no_args_is_help=True, help="Telegram reaction feedback: ledger, mapping, join, audit.")
mapping_app = typer.Typer(no_args_is_help=True, help="The versioned emoji → score mapping.")
chunks_app = typer.Typer(no_args_is_help=True, help="The registry of reply chunks sent to Telegram.")
app.add_typer(feedback_app, name="feedback")
feedback_app.add_typer(mapping_app, name="mapping")
feedback_app.add_typer(chunks_app, name="chunks")

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="A YAML under configs/feedback/.")]
LedgerOpt = Annotated[Path | None, typer.Option("--ledger", help="Reaction ledger (overrides the config).")]
MappingOpt = Annotated[Path | None, typer.Option("--mapping", help="Reaction mapping (overrides the config).")]
RegistryOpt = Annotated[Path | None, typer.Option("--registry", help="Chunk registry (overrides the config).")]
Overrides = Annotated[list[str] | None, typer.Argument(help="key=value config overrides.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable summary.")]


def _cfg(config: Path | None, overrides: list[str] | None, **paths: Path | None) -> Any:
    from tracebridge.config import load_config
    from tracebridge.feedback.config import FeedbackConfig

    extra = [f"{k}={v}" for k, v in paths.items() if v is not None]
    with config_errors():
        return load_config(FeedbackConfig, config, [*(overrides or []), *extra])


def _named(flag: str, given: Path | None, value: str) -> str:
    """How the user named a path: ``--ledger PATH`` when given by its option, else ``ledger=PATH`` (the config
    key, set in the YAML or by an override)."""
    return f"{flag} {value}" if given is not None else f"{flag.lstrip('-')}={value}"


def _file_problem(where: str, path: str) -> str | None:
    """Why the file ``path`` (named as ``where``) cannot be written, found before writing: a folder there, or a
    file where a folder above it must be; None when neither."""
    p = Path(path)  # os.path's tests: Path.is_dir raises on a name too long, os.path.isdir says False
    if os.path.isdir(p):
        return f"{where}: a folder; give the path of a file"
    blocker = next((q for q in p.parents if os.path.exists(q)), None)
    if blocker is not None and not os.path.isdir(blocker):
        return f"{where}: {blocker} is a file, not a folder"
    return None


def _write_error(where: str, path: str, exc: OSError) -> str:
    """Why the file ``path`` (named as ``where``) could not be written, in words: the bare errno text
    (``[Errno 17] File exists: 'x'``) named neither the option nor, often, the path given."""
    return _file_problem(where, path) or f"{where}: cannot be written ({exc.strerror or exc})"


def _check_writable(*files: tuple[str, Path | None, str]) -> None:
    """Exit 2 before any work when one of ``files`` ((flag, the path given by it or None, the path in force))
    cannot be written (``_file_problem``): found while writing, the error was the bare errno text."""
    if bad := [q for flag, given, path in files if (q := _file_problem(_named(flag, given, path), path))]:
        fail("; ".join(bad), 2)


def _done(doc: dict[str, Any], line: str, json_out: bool) -> None:
    if json_out:
        print_json(doc)
    else:
        typer.echo(line)


@feedback_app.command("harvest")
def harvest(
    updates: Annotated[list[Path] | None, typer.Option("--updates", help="getUpdates JSON dump (repeatable).")] = None,
    openclaw: Annotated[list[Path] | None, typer.Option("--openclaw", help="OpenClaw home or transcripts (repeatable).")] = None,
    config: ConfigOpt = None, ledger: LedgerOpt = None, mapping: MappingOpt = None,
    overrides: Overrides = None, json_out: JsonOpt = False,
) -> None:
    """Harvest reactions into the ledger (idempotent) and log the harvest. Exit 2 before any harvest when an
    input is missing, an ``--openclaw`` path holds no transcript or agent database, a file named there is no
    transcript, or an ``--updates`` file holds no update at all (nothing to harvest: logged, it counted as a
    harvest that ran in the daily audit). Exit 1 when the disk fills midway (the rows appended stay; the same
    harvest again adds the rest)."""
    from tracebridge.feedback.harvest import harvest_dumps
    from tracebridge.feedback.harvest_openclaw import (
        harvest_openclaw,
        list_openclaw,
        not_transcripts,
    )
    from tracebridge.importers.openclaw.discover import KEPT_WHERE

    cfg = _cfg(config, overrides, ledger=ledger, mapping=mapping)
    if not updates and not openclaw:
        fail("nothing to harvest: give --updates FILE and/or --openclaw PATH", 2)
    _check_writable(("--ledger", ledger, cfg.ledger), ("--harvest_log", None, cfg.harvest_log),
                    ("--quarantine", None, cfg.quarantine))
    listing = list_openclaw(list(openclaw)) if openclaw else None  # walked once: checked, then harvested
    if listing is not None and (empty := listing.empty):
        fail(f"--openclaw {', '.join(empty)}: no OpenClaw transcript or agent database there, nothing to harvest "
             f"(no harvest logged; OpenClaw keeps them as {KEPT_WHERE}, e.g. --openclaw ~/.openclaw)", 2)
    missing = [str(p) for p in [*(updates or []), *(openclaw or [])] if not p.expanduser().exists()]
    if missing:
        fail(f"no such file or folder: {', '.join(missing)}", 2)
    if listing is not None and (odd := not_transcripts(listing, list(openclaw or []), cfg.max_line_bytes)):  # read 0, exit 0
        fail(f"--openclaw {', '.join(odd)}: not an OpenClaw transcript (JSONL of session events, each an object "
             "with a type); getUpdates dumps go to --updates", 2)
    folders = [str(p) for p in updates or [] if p.expanduser().is_dir()]
    if folders:  # was quarantined as "unreadable: Is a directory" and the harvest exited 0
        fail(f"--updates {', '.join(folders)}: a folder; give getUpdates JSON dump files (repeat --updates for "
             "several; --openclaw takes folders)", 2)
    reports = []
    try:
        if updates:
            reports.append(harvest_dumps(cfg, list(updates)).to_dict())
        if openclaw:
            reports.append(harvest_openclaw(cfg, [str(p) for p in openclaw], listing).to_dict())
    except OSError as exc:
        if exc.errno in _DISK_FULL:  # midway: rows went in before it, so not "nothing was done" (2)
            fail(f"harvest stopped: {exc}. Rows appended before it stay; free space and harvest the same "
                 "input again: it adds only the rest, no row twice", EXIT_FAILED)
        fail(str(exc), 2)  # a ledger or log path that cannot be written
    except ValueError as exc:
        fail(str(exc), 2)
    doc = {"ledger": cfg.ledger, "harvests": reports, "added": sum(r["added"] for r in reports),
           "duplicates": sum(r["duplicates"] for r in reports), "quarantined": sum(r["quarantined"] for r in reports),
           "bots": _per_bot(reports), "accounts": {a: c for r in reports for a, c in r["accounts"].items()}}
    if json_out:
        print_json(doc)
    else:
        for r in reports:
            bot = f" [bot {r['bot_id']}]" if r["bot_id"] else ""
            resume = f"; next getUpdates offset {r['next_offset']}" if r["next_offset"] else ""
            typer.echo(f"{r['source']}{bot}: read {r['read']} (applied {r['applied']}, ignored "
                       f"{sum(r['ignored'].values())}, quarantined {r['quarantined']}), rows added {r['added']}, "
                       f"duplicates {r['duplicates']} → {cfg.ledger}{resume}")
            for why, n in sorted(r["ignored"].items()):
                typer.echo(f"  ignored {n}: {why}")
            for account, a in sorted(r["accounts"].items()):
                typer.echo(f"  OpenClaw account {account} → bot {a['bot_id'] or '(not in openclaw_accounts)'}: read "
                           f"{a['read']} (applied {a['applied']}, quarantined {a['quarantined']})")
            for q in r["quarantine_samples"]:
                typer.echo(f"  quarantined: {q}")


def _per_bot(reports: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The harvests' counts summed per bot (``(none)`` for the unnamed one), with its next getUpdates offset."""
    from tracebridge.feedback.bots import label

    out: dict[str, dict[str, Any]] = {}
    for r in reports:
        b = out.setdefault(label(r["bot_id"]), {**dict.fromkeys(_COUNTS, 0), "next_offset": None})
        for k in _COUNTS:
            b[k] += r[k]
        b["next_offset"] = r["next_offset"] or b["next_offset"]
    return out


_COUNTS = ("read", "accepted", "applied", "quarantined", "added", "duplicates")
_DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)  # a full disk, a file size limit, a quota


@feedback_app.command("serve")
def serve(config: ConfigOpt = None, ledger: LedgerOpt = None, mapping: MappingOpt = None,
          overrides: Overrides = None,
          path: Annotated[str, typer.Option("--path", help="The only path that takes updates "
                                                           "(what the TLS proxy forwards to).")] = "/") -> None:
    """Receive Telegram webhook updates on loopback (secret from the configured environment variable); one
    receiver per bot, each with its ``bot_id=`` and port, when several bots share the feedback files."""
    from tracebridge.feedback.bots import bot_of
    from tracebridge.feedback.webhook import WebhookServer

    cfg = _cfg(config, overrides, ledger=ledger, mapping=mapping)
    secret = os.environ.get(cfg.webhook_secret_env)
    if not secret:
        fail(f"set {cfg.webhook_secret_env} to the secret_token given to setWebhook", 2)
    try:
        bot = bot_of(cfg)  # a token variable that is unset fails here, not on the first update
        srv = WebhookServer(cfg, secret, path=path)  # type: ignore[arg-type]
    except (ValueError, OSError) as exc:
        fail(str(exc), 2)
    of_bot = f", bot {bot}" if bot else ""
    typer.echo(f"listening on {srv.url} (ledger {cfg.ledger}{of_bot}); Ctrl-C to stop", err=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


@mapping_app.command("show")
def mapping_show(config: ConfigOpt = None, mapping: MappingOpt = None, overrides: Overrides = None,
                 json_out: JsonOpt = False) -> None:
    """Print the mapping in force (the defaults when the file does not exist)."""
    from tracebridge.feedback.mapping import load_mapping

    cfg = _cfg(config, overrides, mapping=mapping)
    try:
        m = load_mapping(cfg.mapping)
    except ValueError as exc:
        fail(str(exc), 2)
    doc = {"path": cfg.mapping, "exists": Path(cfg.mapping).is_file(), "version": m.version, "scores": m.scores,
           "default": m.default}
    if json_out:
        print_json(doc)
    else:
        typer.echo(f"{cfg.mapping} (version {m.version}{'' if doc['exists'] else ', built-in defaults'})")
        for e, s in m.scores.items():
            typer.echo(f"  {e}  {s:+g}")


@mapping_app.command("init")
def mapping_init(config: ConfigOpt = None, mapping: MappingOpt = None, overrides: Overrides = None,
                 json_out: JsonOpt = False) -> None:
    """Write the default mapping (❤️ ❤ +2, 👍 +1, 👎 −1, 🙈 −2) unless one exists."""
    from tracebridge.feedback.mapping import init_mapping

    cfg = _cfg(config, overrides, mapping=mapping)
    try:
        m = init_mapping(cfg.mapping)
    except ValueError as exc:
        fail(str(exc), 2)
    except OSError as exc:  # a folder there, a file in the way, no permission
        fail(_write_error(_named("--mapping", mapping, cfg.mapping), cfg.mapping, exc), 2)
    _done({"path": cfg.mapping, "version": m.version, "scores": m.scores}, f"{cfg.mapping}: version {m.version}",
          json_out)


# a negative score (`mapping set 👎 -2`) is an argument, not an unknown option
@mapping_app.command("set", context_settings={"ignore_unknown_options": True})
def mapping_set(emoji: Annotated[str, typer.Argument(help="The reaction's emoji alone, no blanks (e.g. 👍).")],
                score: Annotated[str, typer.Argument(help="A number, or 'none' to unmap.")],
                config: ConfigOpt = None, mapping: MappingOpt = None, json_out: JsonOpt = False) -> None:
    """Set one emoji's score (a new mapping version; the old table is kept in history). A score the emoji
    already has (or ``none`` for one without) changes nothing and writes no version (``changed``: false).
    Exit 2 for an emoji with blanks around it or a score that is no finite number (1e400, nan)."""
    from tracebridge.feedback.mapping import load_mapping, set_score

    cfg = _cfg(config, None, mapping=mapping)
    try:
        value = None if score.lower() == "none" else float(score)
    except ValueError:
        fail(f"score={score!r}: a number or 'none'", 2)
    if value is not None and not math.isfinite(value):  # 1e400 is read as inf: it named neither emoji nor text
        fail(f"{emoji}: score {score} is not a finite number (JSON has none); give a number such as 2 or -1, "
             "or 'none' to unmap", 2)
    try:
        before = load_mapping(cfg.mapping).version
        m = set_score(cfg.mapping, emoji, value)
    except ValueError as exc:
        fail(str(exc), 2)
    except OSError as exc:  # a file in the way, no permission: was the bare errno text
        fail(_write_error(_named("--mapping", mapping, cfg.mapping), cfg.mapping, exc), 2)
    changed = m.version != before
    _done({"path": cfg.mapping, "version": m.version, "scores": m.scores, "changed": changed},
          f"{cfg.mapping}: version {m.version}" + ("" if changed else f" (unchanged: {emoji} already scores {score})"),
          json_out)


@chunks_app.command("record")
def chunks_record(
    chat: Annotated[str, typer.Option(help="Telegram chat id.")],
    message_ids: Annotated[str, typer.Option("--message-ids", help="Comma-separated message ids, in send order.")],
    run_id: Annotated[str, typer.Option("--run-id", help="The run the reply was recorded in (its trace run id).")],
    event_id: Annotated[str, typer.Option("--event-id", help="The event the reply came from.")],
    batch_id: Annotated[str | None, typer.Option("--batch-id", help="The batch's id (default: derived from the bot, "
                                                 "chat, first message id and run id).")] = None,
    config: ConfigOpt = None, registry: RegistryOpt = None, overrides: Overrides = None, json_out: JsonOpt = False,
) -> None:
    """Register one reply sent as several Telegram messages (by the bot ``bot_id=`` names, if several share it);
    exit 2, writing nothing, when a batch cannot be joined as given (a --chat or message id that is no integer, an
    id given twice, an empty run or event id, a message registered for another reply)."""
    from tracebridge.feedback.bots import bot_of
    from tracebridge.feedback.chunks import id_problem, record_batch

    cfg = _cfg(config, overrides, registry=registry)
    bad = [f"{x.strip()!r} {why}" for x in message_ids.split(",") if x.strip() and (why := id_problem(x))]
    problems = [(f"--message-ids {message_ids}: {', '.join(bad)}; give the message ids comma-separated, in send "
                 "order, e.g. --message-ids 101,102")] if bad else []
    if chat.strip() and (why := id_problem(chat)):  # as text, it matched no reaction: their chat ids are integers
        problems.append(f"--chat {chat}: {why}; Telegram chat ids are integers (negative for groups and channels), "
                        "e.g. --chat -1001234567890")
    if problems:
        fail("; ".join(problems), 2)
    ids = [int(x) for x in message_ids.split(",") if x.strip()]
    chat_id: Any = int(chat) if chat.strip() else chat
    salt = None
    if chat.strip() and chat_id > 0:  # a private chat: its id is the user's, kept as their salted pseudonym
        from tracebridge.feedback.harvest import _salt
        from tracebridge.feedback.salt import read_salt_file

        why = f"{cfg.user_salt_env} is not set: set it to the harvest's salt (allow_default_salt=true for tests and demos)"
        try:
            if not os.environ.get(cfg.user_salt_env):
                read_salt_file()  # a salt file that cannot be used: said as such, not as "not set"
            salt = _salt(cfg)
        except ValueError as exc:
            fail(f"--chat {chat}: a private chat, whose id is the user's Telegram id, kept as the user's salted "
                 f"pseudonym (as the ledger keeps it); {why if 'is not set' in str(exc) else exc}; nothing recorded", 2)
    try:  # no ids, a message held for another reply, rows of other bots: the reason names the file or option
        batch = record_batch(cfg.registry, chat_id, ids, run_id, event_id, batch_id, bot_id=bot_of(cfg),
                             legacy_bot_id=cfg.legacy_bot_id, salt=salt)
    except (ValueError, OSError) as exc:  # a registry path that cannot be read as one (a folder) or written
        unusable = isinstance(exc, OSError) or os.path.isdir(cfg.registry)
        fail(_write_error(_named("--registry", registry, cfg.registry), cfg.registry, exc) if unusable else str(exc), 2)
    _done({"batch_id": batch, "chunks": len(ids), "registry": cfg.registry},
          f"{batch}: {len(ids)} chunks → {cfg.registry}", json_out)
