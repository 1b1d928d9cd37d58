"""The versioned emoji → score mapping (``memory/feedback/reaction-mapping.json``).

File: ``{"version": N, "mapping": {emoji: score}, "default": null, "updated_at": ISO,
"history": [{"version", "mapping", "updated_at"}, ...]}``. Defaults (version 1): ❤️ and ❤ = +2,
👍 = +1, 👎 = −1, 🙈 = −2; anything else is unlabeled (``default`` null). Emojis are compared
without variation selectors (U+FE0F, U+FE0E) and skin-tone modifiers (U+1F3FB..U+1F3FF), so ❤️ and ❤
are one reaction, and 👍🏽 is 👍. ``set_score`` bumps the
version and keeps the previous table in ``history`` (for the monthly review).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tracebridge.capture.writer import write_atomic
from tracebridge.schema.canonical import utc_now

VS16 = "\ufe0f"
# what norm_emoji drops: the emoji and text presentation selectors and the five skin tones (👍🏽 → 👍);
# a ZWJ sequence keeps its joiner, so ❤‍🔥 stays apart from ❤
_VARIANTS = str.maketrans(dict.fromkeys([0xFE0F, 0xFE0E, *range(0x1F3FB, 0x1F400)]))
DEFAULT_SCORES: dict[str, float] = {"❤️": 2, "❤": 2, "👍": 1, "👎": -1, "🙈": -2}


def norm_emoji(emoji: str) -> str:
    """An emoji without variation selectors and skin tones (❤️ → ❤, 👍🏽 → 👍): one reaction, one score.
    Before, only U+FE0F was dropped, so 👍🏽 was unmapped (no score) and a ledger's 👍🏽 and 👍 of one
    user were two reactions."""
    return emoji.translate(_VARIANTS)


@dataclass
class Mapping:
    """A loaded mapping: version, table (normalised keys) and the raw document."""

    version: int
    scores: dict[str, float]
    default: float | None = None
    doc: dict[str, Any] = field(default_factory=dict)

    def score(self, emoji: str) -> float | None:
        """The score of an emoji, or ``default`` (None = unlabeled)."""
        return self.scores.get(norm_emoji(emoji), self.default)


def default_doc() -> dict[str, Any]:
    """A new mapping document: version 1 with the default scores and no history."""
    return {"version": 1, "mapping": dict(DEFAULT_SCORES), "default": None, "updated_at": utc_now(), "history": []}


def parse_mapping(doc: Any, where: str) -> Mapping:
    """Check and load a mapping document.

    Raises:
        ValueError: ``where:field: problem`` for a bad document.
    """
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: expected a JSON object")  # noqa: TRY004 - bad input, one error type for callers
    table = doc.get("mapping", doc.get("scores"))
    if not isinstance(table, dict):
        hint = ("; this file is a bare table: put it under \"mapping\" (or run `tracebridge feedback mapping init` "
                "and `mapping set`)") if "mapping" not in doc and "scores" not in doc else ""
        raise ValueError(f'{where}:mapping: expected {{"version": N, "mapping": {{emoji: score}}}}{hint}')  # noqa: TRY004
    scores: dict[str, float] = {}
    spelled: dict[str, str] = {}
    for k, v in table.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{where}:mapping.{k}: score must be a number, got {v!r}")  # noqa: TRY004
        n = norm_emoji(k)
        if n in scores and scores[n] != float(v):  # one reaction (❤️ is ❤, 👍🏽 is 👍): the last score won
            raise ValueError(f"{where}:mapping.{k}: {k} and {spelled[n]} are one reaction (emojis are read "
                             f"without variation selectors and skin tones) with two scores, {v!r} and "
                             f"{scores[n]:g}; keep one of them (`tracebridge feedback mapping set`)")
        scores[n], spelled[n] = float(v), spelled.get(n, k)
    version = doc.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{where}:version: must be an integer >= 1, got {version!r}")
    default = doc.get("default")
    if default is not None and (isinstance(default, bool) or not isinstance(default, (int, float))):
        raise ValueError(f"{where}:default: must be null or a number, got {default!r}")
    return Mapping(version, scores, default, doc)


def load_mapping(path: str | os.PathLike[str]) -> Mapping:
    """The mapping at ``path``; the built-in defaults (version 1) if nothing is there.

    Raises:
        ValueError: a folder there (read as no file, a mistyped path scored every reaction by the defaults),
            or a file that is not a mapping (``mapping_from_bytes``).
    """
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{p}: a folder; give the mapping's file (e.g. {p / 'reaction-mapping.json'})")
    return parse_mapping(default_doc(), "<defaults>") if not p.is_file() else mapping_from_bytes(p.read_bytes(), str(p))


def mapping_from_bytes(raw: bytes, where: str) -> Mapping:
    """The mapping in ``raw`` (a file's bytes, read once by a caller that also hashes them).

    Raises:
        ValueError: ``where: not valid JSON`` or ``parse_mapping``'s ``where:field: problem``.
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON: {exc}") from exc
    return parse_mapping(doc, where)


def _save(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")


def init_mapping(path: str | os.PathLike[str]) -> Mapping:
    """Write the default mapping unless a mapping exists; return what is on disk."""
    p = Path(path)
    if not p.is_file():
        _save(p, default_doc())
    return load_mapping(p)


def set_score(path: str | os.PathLike[str], emoji: str, score: float | None) -> Mapping:
    """Set (or, with None, remove) one emoji's score: a new version; the old table goes to history.
    A change that leaves the table as it is (the same score again, removing an emoji that has none)
    writes nothing and returns the mapping as it is: a version that changed nothing would read, in the
    monthly review's history, as a decision someone made.

    Raises:
        ValueError: a score that is not finite, an emoji that is empty or has blanks around it (a
            reaction is the emoji alone: ``"👍 "`` would get a score no reaction ever matches), or a
            name in ASCII (``thumbsup``) other than ``custom:<id>`` and ``paid``, as harvests write them.
    """
    if score is not None and not math.isfinite(score):  # JSON has no NaN/inf: it would be saved as null
        raise ValueError(f"score={score}: must be a finite number")
    if not norm_emoji(emoji).strip() or emoji != emoji.strip():
        raise ValueError(f"emoji={emoji!r}: give the reaction's emoji alone, without blanks, e.g. 👍")
    if emoji.isascii() and emoji != "paid" and not emoji.startswith("custom:"):  # "thumbsup", ":+1:": no reaction
        raise ValueError(f"emoji={emoji!r}: a name, not a reaction; give the emoji itself (👍), custom:<id> for a "
                         "custom emoji, or paid")
    p = Path(path)
    cur = load_mapping(p)
    if cur.scores.get(norm_emoji(emoji)) == score:  # None: it has no score and keeps none
        return cur
    doc = dict(cur.doc) if p.is_file() else default_doc()
    table = dict(doc.get("mapping", doc.get("scores")) or {})
    history = list(doc.get("history") or [])
    history.append({"version": cur.version, "mapping": table, "updated_at": doc.get("updated_at")})
    new_table = {k: v for k, v in table.items() if norm_emoji(k) != norm_emoji(emoji)}
    if score is not None:
        new_table[emoji] = score
    doc.update(version=cur.version + 1, mapping=new_table, updated_at=utc_now(), history=history)
    doc.pop("scores", None)
    _save(p, doc)
    return load_mapping(p)
