"""One multi-pattern scan before the triggers: which of ``Triggers``' checks a string may fire.

The triggers (``tracebridge.curate.triggers``) are some twenty C-level passes over a string (byte
translations, literal-led searches) and Python loops over its token runs: ~35 µs for a record of
an OpenClaw session (~800 bytes of JSON), ~22 MB/s. Most records fire none (95% of them). Hyperscan
matches every pattern below in one pass (~2 µs for a 236-byte record, ~6 µs for an OpenClaw one),
each pattern a **superset** of what one
check fires on, so a check whose patterns match nowhere in a string cannot fire on it and is not
run; a string no pattern matches is clean without any check.

A check's patterns (``check_patterns``, keyed like ``Triggers._build_triggers``' checks) are the
check's own conditions without the refinements that need code (a run's edge groups, base64
decoding beyond its first 16 characters, a client next to a flag, a long token run around a
marker), the lookarounds written out, and a case-blind flag where the check looks at folded text.
``tests/curate/test_prescan.py`` holds them to that on the redaction corpora and on random text:
wherever a check fires, its patterns match.

A database is compiled once per process (~0.2 s) and kept in ``cache_dir()`` for the next (loaded in
~1 ms; ``TRACEBRIDGE_CACHE_DIR`` moves it). Hyperscan (the ``hyperscan`` wheel, x86-64) is optional: without it, or with
``TRACEBRIDGE_PRESCAN=off`` in the environment, every check runs on every string, as before; the
findings are the same either way. Pure and deterministic; no I/O but that cache.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import platform
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Base64 characters and their values; what a decoded base64 credential may hold (``B64_PRINTABLE``).
_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_PRINTABLE = frozenset(range(32, 127)) | {9, 10, 13}
_SEP = rb"[\"'\\\] \tt\x00]*[:=\x00]"  # ``triggers._SEPARATOR`` (case-blind patterns: ``t`` is ``T`` too)


def _cls(values: Iterable[int]) -> bytes:
    """A character class of the base64 characters of ``values``."""
    chars = sorted({_B64[v] for v in values})
    return b"[" + b"".join(b"\\" + bytes([c]) if c in b"+/" else bytes([c]) for c in chars) + b"]"


def _b64_quad() -> bytes:
    """Four base64 characters that decode to three ``_PRINTABLE`` bytes: for each second character
    ``v1`` and each low two bits ``c`` of the third, the first, third and fourth that may go with them
    (``b0 = v0<<2 | v1>>4``, ``b1 = (v1&15)<<4 | v2>>2``, ``b2 = (v2&3)<<6 | v3``)."""
    shapes: dict[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]], list[int]] = {}
    for v1 in range(64):  # second characters with the same companions share one class
        first = tuple(v0 for v0 in range(64) if (v0 << 2 | v1 >> 4) in _PRINTABLE)
        for c in range(4):
            third = tuple(v2 for v2 in range(64) if v2 & 3 == c and ((v1 & 15) << 4 | v2 >> 2) in _PRINTABLE)
            fourth = tuple(v3 for v3 in range(64) if (c << 6 | v3) in _PRINTABLE)
            if first and third and fourth:
                shapes.setdefault((first, third, fourth), []).append(v1)
    alts = [_cls(first) + _cls(v1s) + _cls(third) + _cls(fourth) for (first, third, fourth), v1s in shapes.items()]
    return b"(?:" + b"|".join(alts) + b")"


def _literals(words: Iterable[str | bytes]) -> bytes:
    """An alternation of the literal ``words`` (each byte written as ``\\xHH``)."""
    return b"|".join(b"".join(b"\\x%02x" % c for c in (w.encode() if isinstance(w, str) else w)) for w in words)


Alternative = list[tuple[bytes, bool]]  # (pattern, case_blind) that must all match somewhere in a string
_TOKEN_RUN = (rb"[A-Za-z0-9_+/\-]{20}", False)  # a long token run (``_TOKEN_TABLE``): 20+ characters
_BLANK = rb"[ \t\\\"\x00]"  # after a client's password flag (``_DASH_FLAG``)


def _flag_patterns() -> list[Alternative]:
    """``-u``; each client password flag and a blank, with a client that reads it (``_dash_hit``)."""
    from tracebridge.curate.triggers import FLAG_CLIENT_LITERALS

    flags = {"U": rb"-U", "pass": rb"--?pass" + _BLANK, "storepass": rb"-(?:src|dest)?storepass" + _BLANK,
             "keypass": rb"-(?:src|dest)?keypass" + _BLANK}
    out: list[Alternative] = [[(rb"-u", False)]]
    for flag, clients in FLAG_CLIENT_LITERALS.items():
        head = flags.get(flag) or (rb"-" + flag.encode() + _BLANK if len(flag) == 1 else rb"--?" + flag.encode() + _BLANK)
        out.append([(head, False), (_literals(clients), False)])
    return out


def check_patterns(words_b: Iterable[bytes] = (), other_digits: bool = False, words_u: bool = False,
                   folds: bool = False) -> dict[str, list[Alternative]]:
    """The alternatives of each check (``Triggers._build_triggers``' keys): the check may fire on a
    string only where all patterns of one of them match. ``words_b``: the ASCII user terms (lower
    case); for ``non_ascii`` (``Triggers._non_ascii``): ``other_digits`` when digits of other
    scripts open groups, ``words_u`` when there are non-ASCII terms, ``folds`` when there are terms
    (an ASCII one may be written with a letter Unicode folds to ASCII)."""
    from tracebridge.curate import triggers as t
    from tracebridge.curate.iban import LABELLED_PRESCAN, LOWER_PRESCAN
    from tracebridge.curate.obfuscated_email import PRESCAN as OBFUSCATED_PRESCAN
    from tracebridge.curate.other_digits import other_digit_encodings
    from tracebridge.curate.pairs import PAIR_HEAD, PAIR_TAIL
    from tracebridge.curate.triggers import _ASCII_FOLD_BYTES, _FREE_LITERALS, SECRET_LITERALS

    def same(search: Any) -> bytes:  # a trigger's own pattern, where Hyperscan reads it as ``re`` does
        return search.__self__.pattern

    token_markers = [x for x in SECRET_LITERALS if x not in _FREE_LITERALS and x != "PRIVATE KEY"
                     and "ccess" not in x.lower()]
    non_ascii: list[Alternative] = [[(_literals(other_digit_encodings()), False)]] if other_digits else []
    if words_u:
        non_ascii.append([(rb"[\x80-\xff]", False)])
    elif folds:
        non_ascii.append([(_literals(_ASCII_FOLD_BYTES), False)])
    return {
        "email": [[(rb"@", False)], [(same(t._PCT40), False)], *([(p, True)] for p in OBFUSCATED_PRESCAN)],
        "ipv4": [[(same(t._IPV4_TAIL), False)]],
        # uppercase, digits; spaces and dashes deleted: two letters, two digits, eleven of either
        "iban": [[(rb"[A-Z][ \-]*[A-Z][ \-]*\d[ \-]*\d(?:[ \-]*[A-Z0-9]){11}", False)], [(LOWER_PRESCAN, False)],
                 [(LABELLED_PRESCAN, True)]],
        # seven digits with separators (and JSON's backslash and ``t``) deleted between them
        "digits": [[(rb"\d(?:[ \t().\-/\\t]*\d){6}", False)]],
        "ipv6": [[(same(t._IPV6_GAP), False)], [(same(t._IPV6_EIGHT), False)]],  # "::" or eight groups
        "credential": [
            [(same(t._PRIVATE_KEY), True)], [(rb"://[^\s/@:]*:[^\s/@]+@", False)], [(rb"secret_?access_?key", True)],
            [(_literals(token_markers), False), _TOKEN_RUN],  # a marker within a long token run
            [(rb"aws|xox|hooks\.slack\.com|eyJ|ya29\.", True), _TOKEN_RUN], [(rb":A", False), _TOKEN_RUN], [(rb"(?:AC|SK)[0-9a-f]{32}|[?&]sig=", False)], [(rb"[sS]G\.", False), _TOKEN_RUN],  # free ones
            [(_b64_quad() * 4, False)],  # base64 of printable text (``base64_hit``: its first 16 characters)
            [(same(t._AUTH_SCHEME), True)],  # auth header
            # secret names before a separator; a .netrc entry's password; a ``--`` flag with a name
            [(rb"pass(?:word|wd|phrase)" + _SEP, True)], [(rb"(?:secret|key|token|authorization)" + _SEP, True)],
            [(rb"password(?:[ \t\r\n]|\\[nrt])", True), (rb"(?:login|machine|default)(?:[ \t\r\n]|\\[nrt])", True)],
            [(rb"--[a-z0-9_\-]{0,48}(?:pass|secret|token|key)", True)], [(rb"value\\*[\"']?(?:[ \t]|\\+t){0,8}[:\x00]", True), (PAIR_HEAD.pattern, True)],  # pair_hit
            [(rb"value\\*[\"']?(?:[ \t]|\\+t){0,8}[:\x00]", True), (PAIR_TAIL.pattern, True)],  # the name after the value
            *_flag_patterns(), [(same(t._MYSQL), False)],
            [(rb"cookie", True)], [(rb"-b[ \t\\\"'=\x00]", False), (rb"curl", True)]],  # cookies.cookie_hit
        "terms": [[(_literals(words_b), True)]] if words_b else [],
        "non_ascii": non_ascii,
    }


class Prescan:
    """A compiled Hyperscan database of ``check_patterns`` for the checks ``keys``; ``hits(data)``
    gives the indexes (into ``keys``) of the checks one of whose alternatives matches ``data``."""

    def __init__(self, keys: list[str], **kw: Any) -> None:
        import hyperscan as hs

        kw = {"words_b": (), "other_digits": False, "words_u": False, "folds": False, **kw}
        self._args = (tuple(keys), tuple(kw["words_b"]), kw["other_digits"], kw["words_u"], kw["folds"])
        table = check_patterns(**kw)
        exprs: list[bytes] = []
        flags: list[int] = []
        check: list[int] = []  # the check of each expression's id (-1: part of an alternative)
        for i, key in enumerate(keys):
            for alt in table[key]:
                parts = []
                for pattern, blind in alt:
                    parts.append(len(exprs))
                    exprs.append(pattern)
                    flags.append(hs.HS_FLAG_SINGLEMATCH | hs.HS_FLAG_DOTALL | (hs.HS_FLAG_CASELESS if blind else 0)
                                 | (hs.HS_FLAG_QUIET if len(alt) > 1 else 0))
                    check.append(i if len(alt) == 1 else -1)
                if len(alt) > 1:  # all of them: a logical combination of their ids
                    exprs.append(b" & ".join(str(n).encode() for n in parts))
                    flags.append(hs.HS_FLAG_COMBINATION | hs.HS_FLAG_SINGLEMATCH)
                    check.append(i)
        self._check, self._hs, self.patterns = check, hs, len(exprs)
        if not exprs:
            return
        # a database of user terms (names, hosts: personal data themselves) is never written to disk
        self._db = _database(hs, exprs, flags, cache=not kw["words_b"])
        self._local = threading.local()  # a scratch space per thread (Hyperscan's rule)

    def hits(self, data: bytes) -> set[int]:
        """Indexes of the checks one of whose alternatives matches in ``data``."""
        local = self._local
        scratch = getattr(local, "scratch", None)
        if scratch is None:
            scratch = local.scratch = self._hs.Scratch(self._db)
        found: list[int] = []
        self._db.scan(data, match_event_handler=lambda i, *_: found.append(i), scratch=scratch)
        check = self._check
        return {check[i] for i in found}

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as its arguments and compiled again where it is loaded (a Hyperscan database is
        no Python object)."""
        return _compiled, self._args


CACHE_KEEP = 16  # databases kept in ``cache_dir()``, the newest


def cache_dir() -> Path:
    """Where compiled databases are kept: ``TRACEBRIDGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/tracebridge``,
    else ``~/.cache/tracebridge``."""
    if os.environ.get("TRACEBRIDGE_CACHE_DIR"):
        return Path(os.environ["TRACEBRIDGE_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tracebridge"


def _database(hs: Any, exprs: list[bytes], flags: list[int], cache: bool = True) -> Any:
    """The database of ``exprs``: loaded from ``cache_dir()`` when an earlier process compiled the same
    patterns with the same Hyperscan on this machine (compiling takes ~0.2 s, loading ~1 ms), else
    compiled and, with ``cache``, kept there. The file holds the sha256 of the database before it (a cut
    or changed file is compiled again); a cache that cannot be read or written is only skipped."""
    if not cache:
        return _compile(hs, exprs, flags)
    key = hashlib.sha256(repr((getattr(hs, "__version__", ""), platform.machine(), exprs, flags)).encode()).hexdigest()
    path = cache_dir() / f"prescan-{key[:32]}.hsdb"
    try:
        data = path.read_bytes()
        if hashlib.sha256(data[32:]).digest() == data[:32]:
            return hs.loadb(data[32:], hs.HS_MODE_BLOCK)
    except (OSError, hs.error):
        pass
    db = _compile(hs, exprs, flags)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        blob = hs.dumpb(db)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(hashlib.sha256(blob).digest() + blob)
        os.replace(tmp, path)
        _prune(path.parent)
    except (OSError, hs.error) as exc:
        log.debug("prescan database not cached in %s: %s", path.parent, exc)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return db


def _compile(hs: Any, exprs: list[bytes], flags: list[int]) -> Any:
    db = hs.Database()
    db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs), flags=flags)
    return db


def _prune(folder: Path, keep: int = CACHE_KEEP) -> None:
    """Delete all but the ``keep`` newest databases (~450 KB each; each set of detectors makes one)."""
    kept = sorted(folder.glob("prescan-*.hsdb"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in kept[keep:]:
        old.unlink(missing_ok=True)


def prescan(keys: list[str], words_b: Iterable[bytes] = (), other_digits: bool = False, words_u: bool = False,
            folds: bool = False) -> Prescan | None:
    """A ``Prescan`` for ``keys`` (one per set of arguments in a process), or
    None where Hyperscan is missing, ``TRACEBRIDGE_PRESCAN=off`` or no check has a pattern."""
    if os.environ.get("TRACEBRIDGE_PRESCAN", "on").lower() in ("off", "0", "false", "no"):
        return None
    return _compiled(tuple(keys), tuple(words_b), other_digits, words_u, folds)


def describe() -> str:
    """Whether the prescan runs here, in words (benchmarks print it beside their figures)."""
    if prescan(["email"]) is None:
        return "off (every trigger check runs: no hyperscan wheel, or TRACEBRIDGE_PRESCAN=off)"
    import hyperscan

    return f"on (hyperscan {getattr(hyperscan, '__version__', '?')})"


@functools.lru_cache(maxsize=32)
def _compiled(keys: tuple[str, ...], words_b: tuple[bytes, ...], other_digits: bool, words_u: bool,
              folds: bool) -> Prescan | None:
    try:
        import hyperscan
    except ImportError:
        return None
    try:
        ps = Prescan(list(keys), words_b=words_b, other_digits=other_digits, words_u=words_u, folds=folds)
    except hyperscan.error as exc:  # a CPU Hyperscan cannot run on (no SSSE3): the checks run themselves
        log.warning("redaction prescan off: Hyperscan refused its patterns here (%s); every trigger check runs", exc)
        return None
    return ps if ps.patterns else None


__all__ = ["Prescan", "check_patterns", "describe", "prescan"]
