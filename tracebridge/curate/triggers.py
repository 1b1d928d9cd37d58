"""Cheap triggers of ``Detectors``: which detector groups a string may need, on its UTF-8 bytes.

``Triggers`` (a mixin of ``tracebridge.curate.detectors.Detectors``) gives ``fired`` and
``triggered``: substring tests, byte-table translations and literal-led regexes, each a superset of
what its detectors find, on text and on JSON-serialised text alike (see ``_build_triggers``). Here
too live the patterns both levels share: ``GROUPS``, the credential markers (``SECRET_MARKERS``),
``NOT_PHONE``, ``NOT_NUMBER`` and ``MAX_GROUPS``. The detectors themselves, ``Span`` and overlap
resolution are in ``tracebridge.curate.detectors``. Pure and deterministic; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tracebridge.curate.base64_trigger import B64_LONG, base64_hit
from tracebridge.curate.config import RedactionConfig
from tracebridge.curate.cookies import cookie_hit
from tracebridge.curate.iban import iban_hit
from tracebridge.curate.obfuscated_email import obfuscated_hit
from tracebridge.curate.other_digits import other_digit
from tracebridge.curate.pairs import pair_hit
from tracebridge.curate.prescan import prescan

# Dates and decimals, which a phone number neither is nor starts with: ISO dates, and dotted dates with a plausible
# day and month (``27.11.2026``, ``2026.11.27``), which in regions without a trunk prefix (Denmark: ``27 11 20 26``) are valid national numbers.
_DAY, _MONTH = r"(?:0?[1-9]|[12]\d|3[01])", r"(?:0?[1-9]|1[0-2])"
NOT_PHONE = re.compile(r"^(?:\d{4}-\d{2}-\d{2}|\d+\.\d+)$|^\d{4}-\d{2}-\d{2}[T ]"
                       rf"|^(?:{_DAY}\.{_MONTH}\.(?:19|20)\d\d|(?:19|20)\d\d\.{_MONTH}\.{_DAY})(?!\.?\d)")
NOT_NUMBER = re.compile(r"\d+\.\d+|\d{1,3}(?:\.\d{1,3}){3}")  # a whole run that is a decimal or a dotted quad
# Word characters of alphabets written with spaces between words (Latin, Greek, Cyrillic). Values
# are bounded by these, not by ``\w``: CJK text has no spaces, so ``請聯繫bob@example.com`` or
# ``電話03-1234-5678`` must still match.
WORD_CHARS = "0-9A-Za-z_\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff"
MAX_GROUPS = {"CARD": 5, "PHONE": 6}  # digit groups a card or phone number spans at most
# Trigger groups (``Detectors.fired``), each gating its detectors in ``Detectors.scan``.
GROUPS = frozenset({"email", "ipv4", "iban", "digits", "ipv6", "secrets", "keywords", "base64", "auth_header",
                    "terms"})
# Credential markers: a string without one never reaches detect-secrets.
SECRET_LITERALS = ["A3T", "AKIA", "ASIA", "ABIA", "ACCA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_",
                   "glpat-", "gldt-", "glptt-", "glrt-", "glsoat-", "glft-", "glimt-", "glagent-", "glcbt-", "gloas-", "xox",
                   "hooks.slack.com", "webhooks/", "xapp-", "sk-", "sk_live_", "rk_live_", "sk_test_", "rk_test_", "SG.", "npm_", "pypi-", "AIza", "GOCSPX-", "hf_", "ya29.", "eyJ", "PRIVATE KEY",
                   "aws", "AWS", "Aws", "SecretAccessKey", "secret_access_key", "SECRET_ACCESS_KEY", "GR1348941"]
SECRET_MARKERS = "|".join(re.escape(x) for x in SECRET_LITERALS) + r"|://[^\s/@:]*:[^\s/@]+@|\d:A[\w-]{34}|(?:AC|SK)[0-9a-f]{32}|[?&]sig="
# Markers that begin a credential of 20+ token characters (``ghp_`` and 36 more): found within the long
# token runs of a string only. The others (a name or host near the value, a value with dots) anywhere.
# "PRIVATE KEY" and the AWS secret names have checks of their own (``_token_hit``).
_FREE_LITERALS = ("aws", "AWS", "Aws", "hooks.slack.com", "SG.", "eyJ", "xox", "ya29.")
_IN_TOKEN = re.compile("|".join(re.escape(x) for x in SECRET_LITERALS if x not in _FREE_LITERALS
                                 and x != "PRIVATE KEY" and "ccess" not in x.lower()).encode()).search
_GROUP_B = re.compile(rb"\d+")
_TOKEN_TABLE = bytes(97 if chr(i).isascii() and (chr(i).isalnum() or chr(i) in "_-+/") else 32 for i in range(256))
_AWS_SECRET_NAME = re.compile(rb"(?i)secret_?access_?key")  # an AWS secret (base64: '/' '+' split tokens)
_NUM_TABLE = bytes(48 if 48 <= i <= 57 else 120 for i in range(256))  # digit -> "0", else "x"
_SEPARATORS = b" \t().-/"
_NUM_DELETE = _SEPARATORS + b"\\t"
_WORD_BYTES = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
# JSON escapes other than \t stand for characters that end a digit run, like the escape's backslash
# does, but their letter (``n`` of ``\n``, hex of ``\u001f``) would block a run that follows.
_JSON_ESCAPE = re.compile(rb"\\(?:[nrfb]|u00[0-9A-Fa-f]{2})")
_NOT_PHONE_B = re.compile(NOT_PHONE.pattern.encode())
_NOT_NUMBER_B = re.compile(NOT_NUMBER.pattern.encode())
# An IPv6 address with two or more groups (what ``_ipv6`` accepts) has eight groups or a "::" with
# a group on each side or two on one side; a time (12:30:45), ``file:42:13`` or ``std::vector`` has not.
_IPV6_EIGHT = re.compile(rb":[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}"
                         rb":[0-9A-Fa-f]{1,4}:").search
_IPV6_GAP = re.compile(rb"[0-9A-Fa-f]::[0-9A-Fa-f]|[0-9A-Fa-f]:[0-9A-Fa-f]{1,4}::|::[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]").search
# An IPv6 address ending in an IPv4 one, also written out without "::" (``0:0:0:0:0:ffff:192.0.2.1``).
_IPV6_V4 = re.compile(rb":\d{1,3}\.\d{1,3}\.\d{1,3}\.\d").search
# Literal-led searches for what ``in`` tested (CPython 3.11: ``b"ab" in data`` is ~1.5-2.5x slower than
# ``re``'s search). ``_IPV4_TAIL``, the ipv4 trigger, gates ``_IPV6_V4`` (whose ``:`` lead would be tried
# at every key of JSON; ``_ipv4_hit``).
_IPV4_TAIL = re.compile(rb"\.\d{1,3}\.\d{1,3}\.\d").search
_DOUBLE_COLON, _PCT40, _SEVEN_ZEROS = (re.compile(x).search for x in (rb"::", rb"%40", rb"0000000"))
_PRIVATE_KEY, _CCESS, _TELEGRAM, _TWILIO_AC, _TWILIO_SK, _SAS = (re.compile(x).search for x in (  # Twilio SIDs, Azure SAS
    rb"private key", rb"ccess", rb":A(?<=\d:A)[\w-]{34}", rb"AC[0-9a-f]{32}", rb"SK[0-9a-f]{32}", rb"sig=(?<=[?&]sig=)"))
# _ONE_BYTE: a one-byte ``data.find(b"@")`` is a memchr, ~3x faster than ``in`` or a search.


# Case-blind credential checks share one translation: ASCII letters in lower case, but for G and J,
# which the free markers ``SG.`` and ``eyJ`` hold in upper case (``aws``, ``ccess``, ``private key``,
# the secret names and the auth schemes hold neither).
_FOLD_TABLE = bytes(i + 32 if 65 <= i <= 90 and i not in b"GJ" else i for i in range(256))
# The free markers folded, each looked for from a rare letter (``re`` scans for a pattern's first
# literal; ``in`` of 2-3 bytes is slower): ``aws`` from ``w``, the Slack host from ``k``, ``sG.`` and
# ``eyJ`` only where a ``G`` or ``J`` is (rare once folded: one memchr).
_FREE_SEARCHES = tuple(re.compile(p).search for p in (rb"ws(?<=aws)", rb"xox", rb"k\.com(?<=hooks\.slack\.com)", rb"ya29\."))
# Credentials by context (``tracebridge.curate.credentials``): a secret name, one of which ends every
# name (``pass…`` and the rest); after it, closing quotes and brackets (``env["API_KEY"] =``), JSON
# escapes (``\"``, ``\t``), blanks, then the separator (``\0`` stands for the end of a dict key in the
# walk's check of a record's strings joined: ``tracebridge.curate.walk.Walker``); or a ``--flag``
# holding a name. Each search starts with a literal, which ``re`` scans for in C, the rarer its first
# letter the faster (``cret`` for ``secret``, ``ke`` for ``key`` and ``token``): an alternation of the
# names is tried at every s, t, p and k, and a loop over each name's occurrences (the transcripts use
# ``token``, ``key`` and ``secret`` as words) costs a call each, both ~2-3x slower.
_SEPARATOR = rb"[\"'\\\] \tt]*[:=\0]"
# ``password`` and a blank (raw or escaped in JSON) is looked for in the same search: a .netrc entry
# (``machine h login bob password hunter``, ``machine h password hunter login bob``) has no separator,
# and needs ``login``, ``machine`` or ``default`` and a blank before it (``_NETRC_HEAD``; a second
# search over every string would cost ~13 ms over 16 MB).
_PASSWORD_SEP = re.compile(rb"pass(?:word|wd|phrase)(?:" + _SEPARATOR + rb"|(?<=word)(?P<blank>[ \t\r\n]|\\[nrt]))").search
_NAME_SEPS = tuple(re.compile(n + _SEPARATOR).search for n in (rb"cret(?<=secret)", rb"ke(?:y|(?<=toke)n)", rb"zation(?<=authorization)"))
_FLAG_NAME = re.compile(rb"--[a-zGJ0-9_\-]{0,48}?(?:pass|secret|token|key)").search
_AUTH_SCHEME = re.compile(rb"b(?:earer|asic)").search
# ``-u``, or a client's password flag and a blank (``-p hunter``, ``--pass hunter``; in JSON a tab is
# ``\t`` and an argv element ends in ``"``, joined strings in ``\0``): one search led by ``-``. A flag
# then needs one of the clients that read it (``FLAG_CLIENT_LITERALS``, by the flag's name without its
# dashes and keytool's ``src``/``dest``), each a literal-led search (an alternation costs ~10x one):
# ``mkdir -p`` is common (8% of the OpenClaw bodies), those clients are not. OpenSSL's ``-passin``/
# ``-passout``/``-pass`` (and apksigner's ``--ks-pass``) need its ``pass:`` before the password,
# keytool's and jarsigner's ``-storepass``/``-keypass`` their name, Samba's ``-U user%password`` a
# Samba client's name. The one-letter flags are tried first, in a branch of their own.
_DASH_FLAG = re.compile(rb"-(?:u|(U|[apPw](?=[ \t\\\"\0]))|(-?pass(?:in|out|word)?|(?:src|dest|)(?:store|key)pass)[ \t\\\"\0])").search
FLAG_CLIENT_LITERALS = {"p": ("mongo", "login", "sshpass", "twine"), "a": ("redis-cli",), "pass": ("redis-cli", "pass:"),
                        "passin": ("pass:",), "passout": ("pass:",), "password": ("pass:",), "P": ("sqlcmd",),
                        "w": ("ldap",), "storepass": ("keytool", "jarsigner"), "keypass": ("keytool", "jarsigner"),
                        "U": ("smb", "rpcclient")}
_FLAG_CLIENT_SEARCHES = {f.encode(): tuple(re.compile(x.encode()).search for x in xs) for f, xs in FLAG_CLIENT_LITERALS.items()}
# before a .netrc entry's ``password``: its ``login``, or its start (``machine h password pw login bob``)
_NETRC_HEAD = re.compile(rb"(?:login|machine|default)(?:[ \t\r\n]|\\[nrt])").search
_MYSQL = re.compile(rb"m(?:ysql|ariadb)").search  # a client whose ``-p`` takes the password joined to it (one
# literal-led search, ~15-20 ms over 16 MB; an alternation led by two letters is ~5x slower)
_KEYWORDS, _AUTH, _BASE64 = frozenset({"keywords"}), frozenset({"auth_header"}), frozenset({"base64"})
_SECRETS, _NONE = frozenset({"secrets"}), frozenset()
_IPV4, _IPV4_IPV6 = frozenset({"ipv4"}), frozenset({"ipv4", "ipv6"})


def context_hit(data: bytes, keywords: bool = True, auth: bool = True, low: bytes | None = None) -> frozenset[str]:
    """``keywords`` when ``data`` may hold a secret name, ``-u``, a MySQL client, a client's password
    flag (``keyword_hit``), a name/value entry (``pairs.pair_hit``) or a cookie (``cookies.cookie_hit``), ``auth_header``
    when it may hold ``bearer``/``basic``; each only where enabled. ``low``: ``data`` folded
    (``_FOLD_TABLE``), when the caller has it."""
    low = data.translate(_FOLD_TABLE) if low is None else low
    out = _AUTH if auth and _AUTH_SCHEME(low) is not None else _NONE
    if not keywords:
        return out
    dash = data.find(b"-") >= 0  # ``-u`` and a ``--`` flag hold one; a one-byte find is a memchr (``_ONE_BYTE``)
    if (dash and _dash_hit(data)) or _MYSQL(data) is not None or _name_hit(low, dash) or pair_hit(low) \
            or cookie_hit(low, data):
        return out | _KEYWORDS
    return out


def _dash_hit(data: bytes) -> bool:
    """``-u``, or a client's password flag and a blank with a client that reads it (``_DASH_FLAG``)."""
    m, tried = _DASH_FLAG(data), set()
    while m is not None:
        if m.lastindex is None:
            return True  # -u
        flag = (m.group(1) or m.group(2)).lstrip(b"-").removeprefix(b"src").removeprefix(b"dest")
        if flag not in tried:
            tried.add(flag)
            for search in _FLAG_CLIENT_SEARCHES[flag]:
                if search(data) is not None:
                    return True
        m = _DASH_FLAG(data, m.end())
    return False


def keyword_hit(data: bytes) -> bool:
    """A secret name (before a separator, or in a ``--`` flag), ``-u``, ``mysql`` or ``mariadb``, a
    client's password flag and a blank (``-p ``, ``-a ``…) with such a client (``_dash_hit``), or
    ``login``, ``machine`` or ``default`` and a blank before ``password`` and a blank (a .netrc entry)."""
    return bool(context_hit(data, auth=False))


def _name_hit(low: bytes, dash: bool = True) -> bool:
    """``keyword_hit`` of folded data, ``-u`` and the clients aside (``dash``: whether it holds a ``-``,
    so may hold a flag)."""
    m = _PASSWORD_SEP(low)
    while m is not None:
        if m.group("blank") is None or _NETRC_HEAD(low, 0, m.start()) is not None:
            return True  # a separator, or a .netrc entry's "machine" or "login" before
        m = _PASSWORD_SEP(low, m.end())
    for search in _NAME_SEPS:
        if search(low) is not None:
            return True
    return dash and _FLAG_NAME(low) is not None


def _free_marker(low: bytes) -> bool:
    """Whether folded data holds one of ``_FREE_LITERALS`` (folded)."""
    for search in _FREE_SEARCHES:
        if search(low) is not None:
            return True
    return (b"G" in low and b"sG." in low) or (b"J" in low and b"eyJ" in low)


# What Unicode case folding (``re``'s IGNORECASE, which the terms' patterns use) takes for an ASCII
# letter: the long s, the Kelvin sign, the dotted and the dotless i. ASCII terms are looked for in a
# text holding one with these folded (``Jeſſica``, ``Kim`` with a Kelvin sign).
_ASCII_FOLDS = str.maketrans({"\u017f": "s", "\u212a": "k", "\u0130": "i", "\u0131": "i"})
_ASCII_FOLD_BYTES = tuple(chr(c).encode() for c in (0x17F, 0x212A, 0x130, 0x131))


def _ipv4_hit(data: bytes) -> frozenset[str]:
    """``ipv4`` for a dotted-quad tail (``_IPV4_TAIL``); ``ipv6`` too when an IPv6 address ends in it
    (``_IPV6_V4``, ``0:0:0:0:0:ffff:192.0.2.1``), which only such a tail can: the one search for both."""
    if _IPV4_TAIL(data) is None:
        return _NONE
    return _IPV4_IPV6 if _IPV6_V4(data) is not None else _IPV4


def _ipv6_hit(data: bytes) -> bool:
    """An IPv6 shape ``Detectors._ipv6`` may accept (see ``_IPV6_GAP``; one ending in an IPv4 address is
    ``_ipv4_hit``'s)."""
    if _DOUBLE_COLON(data) is not None and _IPV6_GAP(data):
        return True
    return data.count(b":") >= 7 and _IPV6_EIGHT(data) is not None


class Triggers:
    """The trigger half of ``Detectors``, which supplies ``on``, ``cfg`` and ``_card_run``."""

    on: set[str]
    cfg: RedactionConfig

    def _card_run(self, run: str) -> bool:
        """Whether the digit run ``run`` holds a card (``Detectors``: its exact check)."""
        raise NotImplementedError

    def _build_triggers(self) -> None:
        """Cheap triggers, run on UTF-8 bytes, each opening one or more groups (``GROUPS``) of
        detectors: substring tests, byte-table translations and a few literal-led regexes (an
        alternation of them in one ``re`` pattern is ~10x slower). All are boundary-free supersets
        of what their detectors find, so they also fire on JSON-serialised text. A credential is a
        long token run holding a credential marker, a URL with a password, a key block or an AWS
        secret's name. Non-ASCII text adds two checks: digits of other scripts, non-ASCII terms.
        With Hyperscan, one scan first rules out the checks that cannot fire (``prescan``)."""
        on = self.on
        self._nums = re.compile(rb"\d[\d \t().\-/]{5,}\d").finditer
        self._url = re.compile(rb"://[^\s/@:]*:[^\s/@]+@").search
        words = [w.strip().lower() for _, ws in self.cfg.terms.items() for w in ws] if "terms" in on else []
        words_b = [w.encode() for w in words if w.isascii()]
        self._words_u = [w for w in words if not w.isascii()]
        self._words_f = [w.translate(_ASCII_FOLDS) for w in words]
        checks: list[tuple[str, frozenset[str] | None, bool, Callable[[bytes], Any]]] = [
            ("email", frozenset({"email"}), "email" in on,  # _ONE_BYTE finds
             lambda d: d.find(b"@") >= 0 or (d.find(b"%") >= 0 and _PCT40(d) is not None) or obfuscated_hit(d)),
            ("ipv4", None, "ip" in on, _ipv4_hit),  # ipv4, and ipv6 for one ending in an IPv4 address
            ("iban", frozenset({"iban"}), bool(on & {"iban", "card"}),  # a card inside an IBAN shape is none
             iban_hit),  # upper case (its shape), lower case (checked: ``tracebridge.curate.iban``)
            ("digits", frozenset({"digits"}), bool(on & {"phone", "card", "ssn"}), self._digit_hit),
            ("ipv6", frozenset({"ipv6"}), "ip" in on, _ipv6_hit),
            ("credential", None, bool(on & {"secrets", "auth_header"}), self._credential_hit),  # the groups it returns
            ("terms", frozenset({"terms"}), bool(words_b), lambda d: any(w in d.lower() for w in words_b)),
        ]
        self._checks = [(g, f) for _, g, enabled, f in checks if enabled]
        self._check_fns = tuple(f for _, f in self._checks)  # for ``triggered``: a loop, no generator
        self._other_digits = frozenset({"iban", "ipv4", "digits"}) if on & {"iban", "card", "phone", "ip"} else None
        self._prescan = prescan([k for k, _, enabled, _ in checks if enabled] + ["non_ascii"], words_b=words_b,
                                other_digits=bool(self._other_digits), words_u=bool(self._words_u),
                                folds=bool(self._words_f))

    def triggered(self, text: str | bytes) -> bool:
        """True when ``text`` may hold something a detector finds (no false negatives)."""
        data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        fns = self._check_fns
        if self._prescan is not None:
            hits = self._prescan.hits(data)  # the checks that may fire; the last index: non-ASCII text
            return bool(hits) and (any(fns[i](data) for i in hits if i < len(fns))
                                   or (len(fns) in hits and bool(self._non_ascii(text, data))))
        for check in fns:  # every record of a run passes here: ~10% faster than any(...)
            if check(data):
                return True
        return not data.isascii() and bool(self._non_ascii(text, data))

    def fired(self, text: str | bytes) -> frozenset[str]:
        """The detector groups (``GROUPS``) whose trigger fires on ``text``: ``scan`` needs only these."""
        data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        hits = self._prescan.hits(data) if self._prescan is not None else range(len(self._checks) + 1)
        out = frozenset().union(*(r if g is None else g for i, (g, f) in enumerate(self._checks)
                                  if i in hits and (r := f(data))))
        return out if data.isascii() or len(self._checks) not in hits else out | self._non_ascii(text, data)

    def _non_ascii(self, text: str | bytes, data: bytes) -> frozenset[str]:
        """Groups opened by non-ASCII text: digits of other scripts, non-ASCII terms, ASCII terms
        written with a letter Unicode folds to ASCII (``_ASCII_FOLDS``)."""
        out: frozenset[str] = frozenset()
        if self._other_digits and other_digit(data):
            out = self._other_digits
        folds = bool(self._words_f) and any(c in data for c in _ASCII_FOLD_BYTES)
        if self._words_u or folds:
            utext = text if isinstance(text, str) else data.decode("utf-8", "replace")
            low = utext.lower()
            if any(w in low for w in self._words_u):
                out |= {"terms"}
            elif folds:
                folded = utext.translate(_ASCII_FOLDS).lower()
                if any(w in folded for w in self._words_f):
                    out |= {"terms"}
        return out

    def _credential_hit(self, data: bytes) -> frozenset[str]:
        """The credential groups that may find something in ``data``: ``_token_hit``'s where
        ``secrets`` is on, ``context_hit``'s (``keywords``, ``auth_header``), on one folded copy."""
        low = data.translate(_FOLD_TABLE)
        secrets = "secrets" in self.on
        out = self._token_hit(data, low) if secrets else _NONE
        return out | context_hit(data, secrets, "auth_header" in self.on, low)

    def _token_hit(self, data: bytes, low: bytes) -> frozenset[str]:
        """``secrets`` for a key block, a URL with a password, an AWS secret's name, or a long token
        run (20+ token characters) and a credential marker: a free one anywhere, a token marker within
        such a run; ``base64`` for a run ``base64_hit`` accepts. One translation finds both kinds of
        run (``+/`` join tokens here: runs a superset of either's). ``low``: ``data`` folded."""
        early = _PRIVATE_KEY(low) is not None or (data.find(b"@") >= 0 and self._url(data) is not None) or (
            _CCESS(low) is not None and _AWS_SECRET_NAME.search(data) is not None) or _TELEGRAM(data) is not None \
            or _SAS(data) is not None
        tokens = data.translate(_TOKEN_TABLE)
        start = tokens.find(B64_LONG)
        if start < 0:
            return _SECRETS if early else _NONE
        runs = []
        while start >= 0:  # each run whole (few per string: ids, hashes, keys, paths)
            end = tokens.find(b" ", start + 16)
            end = len(data) if end < 0 else end
            runs.append((start, end))
            start = tokens.find(B64_LONG, end)
        out = _BASE64 if base64_hit(data, runs[0][0]) else _NONE  # its runs lie in these
        long = [data[a:b] for a, b in runs if b - a >= 20]
        joined = b" ".join(long)  # a Twilio SID is a run of 34: looked for in the runs only
        if early or (long and (_free_marker(low) or _IN_TOKEN(joined) is not None or _TWILIO_AC(joined) is not None
                               or _TWILIO_SK(joined) is not None)):
            out = out | _SECRETS
        return out

    def _digit_hit(self, data: bytes) -> bool:
        """A run of digits and separators in which ``DIGITS`` may find a card or phone number.

        C-speed first: digits become ``0``, separators are deleted, anything else becomes ``x``,
        so a candidate (7+ digits) is seven ``0`` in a row; only then are the runs looked at."""
        if _SEVEN_ZEROS(data.translate(_NUM_TABLE, _NUM_DELETE)) is None:
            return False  # deleting every backslash and "t" as well covers the JSON escape \t (a tab)
        if b"\\" in data:  # JSON escapes: \t is a separator, the others end a run as their character does
            data = _JSON_ESCAPE.sub(b"\n", data.replace(b"\\t", b"\t"))
        return any(self._run_may_hit(data, m.start(), m.end()) for m in self._nums(data))

    def _run_may_hit(self, data: bytes, start: int, end: int) -> bool:
        """Whether ``data[start:end]``, a maximal run of digits and separators, may hold a card or a
        phone number as ``_numeric`` looks for them, over any of its digit groups.

        ``DIGITS`` neither starts right after nor ends right before a word character (``b0769175``
        of a UUID, ``2026-01-23T``), so such edge groups are dropped. Of the rest, a card needs
        13-19 digits in card groupings (``_group_spans``, exact); a phone number 7-15 digits in up to
        six groups that ``NOT_PHONE`` does not refuse: ``2026-01-23 12:30`` holds none.
        """
        groups = [g.span() for g in _GROUP_B.finditer(data, start, end)]
        if start and data[start - 1] in _WORD_BYTES:
            groups = groups[1:]
        if end < len(data) and data[end] in _WORD_BYTES:
            groups = groups[:-1]
        if sum(b - a for a, b in groups) < 7:
            return False
        prev = data[groups[0][0] - 1] if groups[0][0] else 32
        after = data[groups[-1][1]] if groups[-1][1] < len(data) else 32
        if prev < 128 and prev not in b"+(" and after < 128 and _NOT_NUMBER_B.fullmatch(
                data, groups[0][0], groups[-1][1]):
            # a plain decimal or dotted quad is skipped whole; "+" or "(" in front makes it no plain one,
            # a non-ASCII letter at either end may make DIGITS match only a part of it
            return False
        run = data[groups[0][0]:groups[-1][1]].decode("ascii")
        if "card" in self.on and self._card_run(run):
            return True
        if not self.on & {"phone", "ssn"}:  # a phone number's check is loose enough for a Social Security number
            return False
        for i, (a, _) in enumerate(groups):
            free = data[a - 1:a] not in (b"+", b"(")  # a "+" or "(" in front: NOT_PHONE cannot refuse it
            digits = 0
            for j in range(i, min(len(groups), i + MAX_GROUPS["PHONE"])):
                sep = data[groups[j - 1][1]:groups[j][0]] if j > i else b""
                digits += groups[j][1] - groups[j][0]
                if (b"/" in sep and sep != b"/") or digits > 15:
                    break  # _group_spans skips such a candidate, and every longer one
                if digits >= 7 and not (free and _NOT_PHONE_B.match(data[a:groups[j][1]])):
                    return True
        return False
