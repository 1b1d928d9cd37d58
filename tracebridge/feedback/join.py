"""Reactions → labels on runs and events (the chunk join policy).

1. **Net reactions.** Ledger rows are replayed in time order per (chat, message, user, emoji):
   ``added`` counts up, ``removed`` down; a reaction that was added and removed nets to nothing. A
   user holds an emoji once: their last change says whether it is there (an anonymous count adds up).
2. **Targets.** Each reacted message is looked up in the chunk registry. A reaction on the
   **last** chunk of a batch labels the whole batch (every chunk's event). A reaction on another
   chunk follows ``other_chunks``: ``batch`` (default; the same as the last chunk), ``chunk``
   (only that chunk's event) or ``ignore``. A message that is in no batch is an orphan.
3. **Labels.** Per event and per run: ``{"feedback_score", "feedback_count", "feedback": {"score",
   "reactions", "unmapped", "n", "scope", "mapping_version", "source": "telegram"}}`` where the
   score is the sum of the mapped scores of the net reactions (None when every reaction is
   unmapped). Each reaction counts once per event and once per run, however many of its chunks
   share them; one user's emoji counts once per reply, however many of its chunks they put it on
   (an anonymous count: its largest on any chunk).
4. **Several bots in one supergroup or channel.** There message ids are the chat's, the same for
   every member (``shares_message_ids``: chat ids ``-100…``), and a reaction is delivered to every
   one of our bots that is an admin there, each under its own update id. A bot's copy of a reaction
   on a message another of our bots sent joins that bot's chunk, and the reaction counts once: the
   sender's own copy decides when its ledger rows hold the reaction (added or removed), else the copy
   of the first other bot (by bot id) that holds it; every other copy is ``shared`` (counted, not
   applied). In private chats and basic groups each bot numbers its own messages, so a bot's reaction
   joins only its own messages there.

``labels_for_runs(ledger, mapping, registry)`` returns ``{run_id: {"run": {...}, "events":
{event_id: {...}}}}``; ``labels_report`` adds the ledger and registry lines it could not use
(``feedback labels``); ``labels_for_run_factory`` wraps ``labels_for_runs`` as the per-run
function the export calls (``tracebridge.export.labels.feedback_source``) to merge labels into
rows' ``meta.labels``.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracebridge.feedback.bots import label, row_bot
from tracebridge.feedback.chunks import Chunk, Registry, read_registry
from tracebridge.feedback.ledger import (
    LedgerRow,
    LedgerScan,
    in_clear,
    read_ledger,
    resolve_users,
    salt_id,
)
from tracebridge.feedback.mapping import Mapping, load_mapping, norm_emoji
from tracebridge.feedback.salt import configured_salt, no_salt
from tracebridge.schema.canonical import sha256_bytes

Reaction = tuple[str, int, str, str, str]  # chat, message id, user, emoji, bot ("" = the unnamed bot)


def reaction_of(r: LedgerRow, legacy_bot_id: str = "") -> Reaction:
    """The reaction a ledger row changes: per bot, since each bot numbers its messages on its own."""
    return str(r.chat), r.message_id, str(r.user), norm_emoji(r.emoji), row_bot(r.raw, legacy_bot_id)


def _replay_order(r: LedgerRow) -> tuple[Any, ...]:
    """Time, then (Telegram's dates are whole seconds) the update id, which grows with every update of
    a bot; rows without one (OpenClaw's lines, whole seconds too) stay in ledger order, the order their
    transcript wrote them (the sort is stable). A user's emoji is set or cleared by their last change, so
    a 👍 removed and added again within a second must replay in that order, not added first."""
    uid = r.raw.get("update_id")
    return r.time, uid if isinstance(uid, int) and not isinstance(uid, bool) else -1


def replay(rows: list[LedgerRow], legacy_bot_id: str = "") -> dict[Reaction, tuple[int, LedgerRow]]:
    """Every reaction the rows change, after replaying them: key → (count, the row that last added it);
    a count of 0 is a reaction added and removed again. A user (a salted ``u:`` pseudonym) holds an emoji
    or not, so their ``added`` sets it to 1 and ``removed`` to 0; only anonymous counts add up. Before, a
    user's 👍 added twice (the removal between them lost: getUpdates keeps updates for 24 hours) counted 2."""
    state: dict[Reaction, tuple[int, LedgerRow]] = {}
    for r in sorted(resolve_users(rows), key=_replay_order):  # one person, one pseudonym (read_ledger's already are)
        k = reaction_of(r, legacy_bot_id)
        n, last = state.get(k, (0, r))
        if isinstance(r.user, str) and r.user.startswith("u:"):
            n = 1 if r.change == "added" else 0
        else:
            n = n + r.count if r.change == "added" else max(0, n - r.count)
        state[k] = (n, r if r.change == "added" else last)
    return state


def net_reactions(rows: list[LedgerRow], legacy_bot_id: str = "") -> dict[Reaction, tuple[int, LedgerRow]]:
    """Reactions present after replaying every change: key → (count, the row that last added it)."""
    return {k: v for k, v in replay(rows, legacy_bot_id).items() if v[0] > 0}


SHARED_IDS_BELOW = -10**12  # supergroup and channel ids are -100 followed by the channel's id


def shares_message_ids(chat: Any) -> bool:
    """Whether every bot in ``chat`` sees its messages under one id: supergroups and channels (Bot API
    chat ids ``-100…``) number messages per chat; private chats and basic groups per member."""
    try:
        return int(chat) <= SHARED_IDS_BELOW
    except (TypeError, ValueError):  # a session:<id> chat of an OpenClaw transcript, an @username
        return False


def chunk_of(key: Reaction, registry: Registry) -> Chunk | None:
    """The chunk a reaction is on: the one its bot sent, else, in a chat whose message ids all bots share,
    the one another of our bots sent as that message."""
    chunk = registry.find(key[0], key[1], key[4])
    if chunk is None and shares_message_ids(key[0]):
        chunk = registry.find_any(key[0], key[1])
    return chunk


def counted_copies(state: dict[Reaction, tuple[int, LedgerRow]],
                   chunks: dict[Reaction, Chunk]) -> dict[Reaction, Reaction]:
    """Per reaction as its sender's key (chat, message, user, emoji, the bot that sent the message), the
    one bot's copy that counts: the sender's when it holds one, else the first other bot's by bot id."""
    out: dict[Reaction, Reaction] = {}
    for key in sorted(chunks, key=str):
        sender = (*key[:4], chunks[key].bot_id)
        out[sender] = sender if sender in state else out.get(sender, key)
    return out


@dataclass
class JoinResult:
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    orphans: list[Reaction] = field(default_factory=list)
    ignored: list[Reaction] = field(default_factory=list)
    joined: list[tuple[Reaction, Chunk, str]] = field(default_factory=list)
    shared: list[tuple[Reaction, Chunk]] = field(default_factory=list)  # copies another bot's copy counts for


class _Acc:
    """The reactions on one run or event: per reaction key its count, emoji and score (the largest count where
    a key comes again: one user's 👍 on three chunks of a reply is one reaction on the reply)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[Any, ...], tuple[int, str, float | None]] = {}
        self.scopes: set[str] = set()

    def add(self, key: tuple[Any, ...], n: int, emoji: str, score: float | None, scope: str) -> None:
        self.scopes.add(scope)
        if n > self.counts.get(key, (0,))[0]:
            self.counts[key] = (n, emoji, score)

    def label(self, version: int) -> dict[str, Any]:
        scope = "batch" if "batch" in self.scopes else "chunk"
        reactions: Counter[str] = Counter()
        unmapped: Counter[str] = Counter()
        total = 0.0
        for n, emoji, score in self.counts.values():
            (unmapped if score is None else reactions)[emoji] += n
            total += 0.0 if score is None else score * n
        mapped = sum(reactions.values())
        score = total if mapped else None
        n = mapped + sum(unmapped.values())
        return {"feedback_score": score, "feedback_count": n,
                "feedback": {"score": score, "reactions": dict(reactions), "unmapped": dict(unmapped),
                             "n": n, "scope": scope, "mapping_version": version, "source": "telegram"}}


def join(rows: list[LedgerRow], mapping: Mapping, registry: Registry, other_chunks: str = "batch",
         legacy_bot_id: str = "") -> JoinResult:
    """Apply the join policy (module docstring) to ledger rows; a reaction joins the chunk its bot sent
    (``registry`` read with the same ``legacy_bot_id``), or, in a supergroup or channel, the chunk
    another of our bots sent (rule 4)."""
    res = JoinResult()
    runs: dict[str, _Acc] = {}
    events: dict[tuple[str, str], _Acc] = {}
    state = replay(rows, legacy_bot_id)
    chunks = {k: c for k in state if (c := chunk_of(k, registry)) is not None}
    counted = counted_copies(state, chunks)
    for key, (n, _) in sorted(state.items(), key=lambda kv: str(kv[0])):
        chunk = chunks.get(key)
        if n == 0:
            continue
        if chunk is None:
            res.orphans.append(key)
            continue
        if counted[(*key[:4], chunk.bot_id)] != key:
            res.shared.append((key, chunk))
            continue
        scope = "batch" if chunk.is_last or other_chunks == "batch" else other_chunks
        if scope == "ignore":
            res.ignored.append(key)
            continue
        res.joined.append((key, chunk, scope))
        targets = registry.batches.get(chunk.batch_id, [chunk]) if scope == "batch" else [chunk]
        score = mapping.score(key[3])
        # a reply is one message to its reader: one user's emoji on several of its chunks is one reaction
        one = (chunk.batch_id, key[2], key[3])
        for c in targets:
            runs.setdefault(c.run_id, _Acc()).add(one, n, key[3], score, scope)
            events.setdefault((c.run_id, c.event_id), _Acc()).add(one, n, key[3], score, scope)
    for run_id, acc in runs.items():
        res.labels[run_id] = {"run": acc.label(mapping.version), "events": {}}
    for (run_id, event_id), acc in events.items():
        res.labels[run_id]["events"][event_id] = acc.label(mapping.version)
    return res


def labels_for_runs(ledger_path: str | os.PathLike[str], mapping_path: str | os.PathLike[str],
                    registry_path: str | os.PathLike[str], other_chunks: str = "batch",
                    legacy_bot_id: str = "", salt: str | None = None) -> dict[str, dict[str, Any]]:
    """Feedback labels per run: ``{run_id: {"run": labels, "events": {event_id: labels}}}``.

    Args:
        ledger_path: the reaction ledger.
        mapping_path: the emoji → score mapping (defaults if the file does not exist).
        registry_path: the sent-chunk registry.
        other_chunks: rule for reactions on chunks other than the last (batch | chunk | ignore).
        legacy_bot_id: the bot of the ledger and registry rows that name none ("" = the unnamed bot).
        salt: the harvest's salt, to read the private chat ids older files kept in the clear as the
            pseudonyms newer rows hold (None: ``TRACEBRIDGE_FEEDBACK_SALT``'s).
    """
    return join(read_ledger(ledger_path, salt).rows, load_mapping(mapping_path),
                read_registry(registry_path, legacy_bot_id, salt), other_chunks, legacy_bot_id).labels


def per_bot(res: JoinResult, rows: list[LedgerRow], legacy_bot_id: str = "") -> dict[str, dict[str, int]]:
    """Per bot (``(none)`` for rows of no bot): its ledger ``rows`` and its reactions present after netting,
    ``present`` = ``joined`` + ``orphans`` + ``ignored`` + ``shared`` (copies of reactions another bot's copy
    counts for, rule 4); ``for_other_bots`` of its joined ones are on messages another of our bots sent."""
    out: dict[str, dict[str, int]] = {}
    names = ("rows", "present", "joined", "orphans", "ignored", "shared", "for_other_bots")

    def one(bot: str) -> dict[str, int]:
        return out.setdefault(label(bot), dict.fromkeys(names, 0))

    for r in rows:
        one(row_bot(r.raw, legacy_bot_id))["rows"] += 1
    for name, keys in (("joined", [j[0] for j in res.joined]), ("orphans", res.orphans), ("ignored", res.ignored),
                       ("shared", [k for k, _ in res.shared])):
        for k in keys:
            one(k[4])[name] += 1
            one(k[4])["present"] += 1
    for k, chunk, _ in res.joined:
        one(k[4])["for_other_bots"] += chunk.bot_id != k[4]
    return dict(sorted(out.items()))


def seen(key: Reaction, chunk: Chunk | None = None) -> dict[str, Any]:
    """A reaction as reports list it: chat, message id, emoji, the bot whose copy it is and, when another
    of our bots sent the message, that bot (``sent_by``)."""
    out = {"chat": key[0], "message_id": key[1], "emoji": key[3], **({"bot": key[4]} if key[4] else {})}
    if chunk is not None and chunk.bot_id != key[4]:
        out["sent_by"] = label(chunk.bot_id)
    return out


def labels_report(ledger_path: str | os.PathLike[str], mapping_path: str | os.PathLike[str],
                  registry_path: str | os.PathLike[str], other_chunks: str = "batch",
                  legacy_bot_id: str = "", salt: str | None = None) -> dict[str, Any]:
    """``labels_for_runs`` plus what the join could not use, as the audit reports it.

    Returns:
        ``{"runs": {run_id: labels}, "runs_labeled", "reactions": {...}, "ledger": {...},
        "registry": {...}}``. ``reactions`` accounts for every reaction present after netting:
        ``present`` = ``joined`` + ``orphans`` (on a message in no registered batch: wrong chat or
        registry, or a message that was no reply) + ``ignored`` (``other_chunks=ignore``) + ``shared``
        (a bot's copy of a reaction in a supergroup or channel that another of our bots' copy counts for,
        rule 4), with the first 50 orphans and shared copies as ``{chat, message_id, emoji}`` (and
        ``bot``, ``sent_by``); ``joined_for_other_bots`` of the joined were harvested by a bot that did
        not send the message (its sender's copy was missing). Each file's block has ``path``, ``read``,
        ``usable``, ``unusable`` (read = usable + unusable) and ``skipped``, the first 50 unusable
        lines as ``file:line:field: problem``. ``bots`` splits the ledger rows and reactions per bot (``per_bot``).
        ``private_chats``: rows of older versions with a private chat's id in the clear (``private_chats_in_clear``).
    """
    scan, registry = read_ledger(ledger_path, salt), read_registry(registry_path, legacy_bot_id, salt)
    res = join(scan.rows, load_mapping(mapping_path), registry, other_chunks, legacy_bot_id)
    labels = res.labels
    reactions = {"present": len(res.joined) + len(res.orphans) + len(res.ignored) + len(res.shared),
                 "joined": len(res.joined), "orphans": len(res.orphans), "ignored": len(res.ignored),
                 "shared": len(res.shared), "joined_for_other_bots": sum(c.bot_id != k[4] for k, c, _ in res.joined),
                 "other_chunks": other_chunks, "orphan_samples": [seen(k) for k in res.orphans[:50]],
                 "shared_samples": [seen(k, c) for k, c in res.shared[:50]]}

    def block(path: str | os.PathLike[str], read: int, skipped: list[str]) -> dict[str, Any]:
        return {"path": str(path), "read": read, "usable": read - len(skipped), "unusable": len(skipped),
                "skipped": skipped[:50]}

    return {"runs": labels, "runs_labeled": len(labels), "reactions": reactions,
            "private_chats": private_chats_in_clear(scan, registry, salt),
            "bots": per_bot(res, scan.rows, legacy_bot_id),
            "ledger": block(ledger_path, scan.read, scan.skipped),
            "registry": block(registry_path, registry.read, registry.skipped)}


def private_chats_in_clear(scan: LedgerScan, registry: Registry, salt: str | None) -> dict[str, Any]:
    """How many ledger and registry rows an older version wrote with a private chat's id in the clear
    (``in_clear``; read as the user's pseudonym under ``salt``, its ``salt_id``), and a ``problem`` when that
    is not the salt of the ledger's rows (read under another, they join none of the rows written since), or
    when the registry's private chats were pseudonymised under another salt than the ledger's."""
    n = sum(in_clear(r.raw.get("chat")) for r in scan.rows) + sum(in_clear(r.get("chat")) for r in registry.raws)
    held = sorted({str(r.raw["salt_id"]) for r in scan.rows if r.raw.get("salt_id")})
    salt = salt or configured_salt()  # was the built-in salt's fingerprint when none was set
    out: dict[str, Any] = {"in_clear": n, "salt_id": salt_id(salt) if salt else None}
    if n:  # the rows are read as pseudonyms, but the ids stay in the files until migrated
        out["fix"] = "`tracebridge feedback migrate` rewrites them as the users' pseudonyms (--dry-run counts them)"
    if n and not salt:
        out["problem"] = (f"{n} ledger and registry rows of older versions keep private chat ids in the clear, read "
                          f"as they are: {no_salt()}, so they join none of the rows written since")
    elif n and held and out["salt_id"] not in held:
        out["problem"] = (f"{n} ledger and registry rows of older versions keep private chat ids in the clear; read "
                          f"under salt {out['salt_id']}, not the ledger's ({', '.join(held)}), they join none of the "
                          "rows written since: set TRACEBRIDGE_FEEDBACK_SALT to the harvest's salt")
    if held and (other := sorted({str(r["salt_id"]) for r in registry.raws if r.get("salt_id")} - set(held))):
        out["problem"] = (f"the chunk registry's private chats were pseudonymised under salt {', '.join(other)}, the "
                          f"ledger's under {', '.join(held)}: reactions in those chats join none of its batches; "
                          "record them with TRACEBRIDGE_FEEDBACK_SALT set to the harvest's salt")
    return out


def file_id(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"path", "sha256", "bytes"}`` of a file (sha256 and bytes None when there is no file)."""
    p = Path(path)
    if not p.is_file():
        return {"path": str(p), "sha256": None, "bytes": None}
    data = p.read_bytes()
    return {"path": str(p), "sha256": sha256_bytes(data), "bytes": len(data)}


@dataclass
class FeedbackLabels:
    """The export's label source: called with a run id, its ``{"run", "events"}`` labels or None. ``sources``
    names the files the labels came from (``file_id`` of the ledger, mapping and registry, the mapping
    version and ``other_chunks``), for the bundle manifest: a bundle leads back to the labels it used."""

    labels: dict[str, dict[str, Any]]
    sources: dict[str, Any]

    def __call__(self, run_id: str) -> dict[str, Any] | None:
        return self.labels.get(run_id)


def labels_for_run_factory(ledger_path: str | os.PathLike[str] | None, mapping_path: str | os.PathLike[str] | None,
                           registry_path: str | os.PathLike[str] | None,
                           other_chunks: str = "batch", legacy_bot_id: str = "",
                           salt: str | None = None) -> FeedbackLabels:
    """The export's label source: ``run_id -> {"run": labels, "events": {...}}`` or None.

    The join runs once, here; the function it returns is a dictionary lookup. A missing mapping
    means the defaults; a missing registry means every reaction is an orphan (no labels). The files
    are hashed around the join, which runs again (up to 3 times) if one changed meanwhile (a harvest
    appending), so ``sources`` holds the bytes the labels came from.
    """
    from tracebridge.feedback.config import FeedbackConfig

    d = FeedbackConfig()
    paths = {"ledger": ledger_path or d.ledger, "mapping": mapping_path or d.mapping, "registry": registry_path or d.registry}
    ids = {k: file_id(p) for k, p in paths.items()}
    for _ in range(3):
        before = ids
        mapping = load_mapping(paths["mapping"])
        res = join(read_ledger(paths["ledger"], salt).rows, mapping,
                   read_registry(paths["registry"], legacy_bot_id, salt), other_chunks, legacy_bot_id)
        ids = {k: file_id(p) for k, p in paths.items()}
        if ids == before:
            break
    sources = {**ids, "mapping_version": mapping.version, "other_chunks": other_chunks}
    if legacy_bot_id:
        sources["legacy_bot_id"] = legacy_bot_id
    return FeedbackLabels(res.labels, sources)
