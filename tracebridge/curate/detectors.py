"""PII and credential detectors: find typed spans in a string, cheaply.

``Detectors.find(text)`` returns non-overlapping ``Span(start, end, kind)`` for e-mail addresses,
phone numbers (``phonenumbers``), payment cards (Luhn), IBANs (mod 97), IPv4/IPv6 addresses,
credentials (``detect-secrets`` plugins plus bearer/basic auth headers and the shapes in
``OWN_SECRETS`` that the plugins miss) and user terms. Recall and precision are measured on a
labelled corpus by ``scripts/chaos_pii.py``. Cost is kept low by a two-level scheme:

1. ``Detectors.fired`` — cheap triggers on UTF-8 bytes (``@``, digit runs that ``DIGITS`` may
   find a card or phone number in, IBAN and IPv4/IPv6 shapes, known credential prefixes, user
   terms), each a substring test, a byte-table translation or a literal-led regex, and each a
   superset of what its detectors find, on text and on JSON-serialised text alike. A string
   without a trigger is clean (``triggered``). Dates, times, ``file:line:col``, UUIDs and
   version numbers, which tool outputs are full of, trip none.
2. ``scan`` runs only the detector groups whose trigger fired: ``phonenumbers`` only on digit-run
   candidate spans, ``detect-secrets`` only on strings with a credential marker (its entropy
   plugins are off: they flag the hex hashes and ids that traces are full of; hex and UUID values
   are filtered out in any case).

Pure and deterministic; no I/O.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from tracebridge.curate.checksums import card_ok, iban_ok
from tracebridge.curate.config import RedactionConfig

log = logging.getLogger(__name__)

# Overlap resolution: a lower index wins over a higher one, then the longer span.
PRIORITY = ("PRIVATE_KEY", "AWS_KEY", "GITHUB_TOKEN", "GITLAB_TOKEN", "SLACK_TOKEN", "ANTHROPIC_KEY", "OPENAI_KEY", "JWT",
            "STRIPE_KEY", "SENDGRID_KEY", "NPM_TOKEN", "PYPI_TOKEN", "SECRET", "URL_PASSWORD", "AUTH_HEADER",
            "EMAIL", "IBAN", "CARD", "IPV6", "IPV4", "PHONE")
# Card number groupings as printed (one run, 4-4-4-4[-x], Amex 4-6-5, Diners 4-6-4, 13-digit Visa 4-3-3-3).
CARD_GROUPS = {(4, 4, 4, 4), (4, 4, 4, 4, 1), (4, 4, 4, 4, 2), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4), (4, 4, 4, 1),
               (4, 4, 4, 2), (4, 4, 4, 3), (4, 3, 3, 3)}
SECRET_TYPES = {
    "AWS Access Key": "AWS_KEY", "GitHub Token": "GITHUB_TOKEN", "GitLab Token": "GITLAB_TOKEN",
    "Slack Token": "SLACK_TOKEN", "OpenAI Token": "OPENAI_KEY", "JSON Web Token": "JWT",
    "Private Key": "PRIVATE_KEY", "Basic Auth Credentials": "URL_PASSWORD", "Stripe Access Key": "STRIPE_KEY",
    "SendGrid API Key": "SENDGRID_KEY", "NPM tokens": "NPM_TOKEN", "PyPI Token": "PYPI_TOKEN",
}

# Word characters of alphabets written with spaces between words (Latin, Greek, Cyrillic). Values
# are bounded by these, not by ``\w``: CJK text has no spaces, so ``請聯繫bob@example.com`` or
# ``電話03-1234-5678`` must still match.
_W = "0-9A-Za-z_\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff"
# An e-mail's local part: letters of any script, dots, ``%+-_``; an apostrophe only between letters
# (``o'brien``, not the quote of ``'bob@x.io'``). One in another script (``山田@``) starts after no
# word character, or the CJK text before ``bob@`` would join it; digits and a ``+tag`` may follow.
# A domain label: letters of any script (IDN ``münchen.de``) or %-escapes (``m%C3%BCnchen.de``).
_LABEL_CH = r"(?:[^\W_]|%[0-9A-Fa-f]{2})"
EMAIL = re.compile(rf"(?:(?<![{_W}.%+-])(?<![{_W}]')[{_W}.%+-](?:[{_W}.%+-]|'(?=[{_W}])){{0,63}}"
                   rf"|(?<![\w.%+'-])[^\W{_W}]+(?:\d+|[.+_-][{_W}.%+-]{{1,62}})?)(?:@|%40)"
                   rf"(?:{_LABEL_CH}(?:(?:{_LABEL_CH}|-){{0,61}}{_LABEL_CH})?\.)+"
                   rf"(?!(?:png|jpe?g|gif|svg|webp|ico)(?![A-Za-z]))[A-Za-z]{{2,24}}"
                   rf"(?![{_W}-])(?!:[A-Za-z0-9~/])")  # not logo@2x.png, not git@github.com:org/repo
DIGITS = re.compile(rf"(?<![{_W}\d+])[+＋]?\(?\d[\d \t().\-/]{{5,}}\d(?![{_W}\d])")
IBAN = re.compile(rf"(?<![{_W}])[A-Z]{{2}}\d{{2}}(?:[ -]?[A-Z0-9]){{11,30}}(?![{_W}])")  # grouped by spaces or dashes
# A dotted quad after a letter (v1.2.3.4) or before a pre-release tag (1.2.3.4-rc1) is a version.
_QUAD = r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = re.compile(rf"(?<![{_W}\d.]){_QUAD}(?!\.?\d)(?!-[A-Za-z])")
# IPv6, the IPv4-mapped form (``::ffff:192.0.2.1``) whole: its IPv4 is the address that matters.
IPV6 = re.compile(rf"(?<![{_W}:.])(?:(?:[0-9A-Fa-f]{{0,4}}:){{2,6}}{_QUAD}(?!\.?\d)"
                  rf"|(?:[0-9A-Fa-f]{{0,4}}:){{2,7}}[0-9A-Fa-f]{{0,4}}(?![{_W}:]))")
AUTH = re.compile(rf"(?i)(?<![{_W}])(bearer|basic)\s+([A-Za-z0-9._~+/\-]{{8,}}=*)")
# Credential shapes detect-secrets misses: new-style OpenAI keys, keys of OpenAI-compatible providers
# without OpenAI's ``T3BlbkFJ`` marker (``sk-`` and 20+ letters and digits, a digit among them: never
# ``sk-learn``), Anthropic keys, Slack app-level tokens, Stripe test-mode keys, fine-grained GitHub
# PATs, bare npm tokens (its plugin wants an .npmrc line), GitLab tokens followed by CJK text and URL
# passwords with RFC 3986 sub-delims (``pa$$w0rd!``) or an empty user (``redis://:pass@cache``).
OWN_SECRETS = {
    "OPENAI_KEY": re.compile(rf"(?<![{_W}-])sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{{20,}}"
                             r"|(?=[A-Za-z]*\d)[A-Za-z0-9]{20,}(?![A-Za-z0-9_\-]))"),
    "ANTHROPIC_KEY": re.compile(rf"(?<![{_W}-])sk-ant-(?:api|admin)\d\d-[A-Za-z0-9_\-]{{20,}}"),
    "SLACK_TOKEN": re.compile(r"xapp-\d-[A-Za-z0-9]+-\d+-[A-Za-z0-9]{16,}"),
    "STRIPE_KEY": re.compile(r"[rs]k_test_[A-Za-z0-9]{24,}"),
    "GITHUB_TOKEN": re.compile(r"github_pat_[A-Za-z0-9_]{60,255}"),
    "NPM_TOKEN": re.compile(r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])"),
    "GITLAB_TOKEN": re.compile(r"gl(?:pat|dt|ft|soat|rt|ptt|cbt|imt|agent|oas)-[A-Za-z0-9_\-]{20,}"),  # CJK after it
    "URL_PASSWORD": re.compile(r"://[A-Za-z0-9\-._~%!$&'()*+,;=]*:([A-Za-z0-9\-._~%!$&'()*+,;=]+)@(?=[A-Za-z0-9\[])"),
    # an AWS secret key has no prefix: found by its name, unquoted (`aws_secret_access_key = ...` in
    # ~/.aws/credentials, env dumps) or as STS/boto JSON (`"SecretAccessKey": "..."`)
    "AWS_KEY": re.compile(r"(?i)(?:aws_?secret_?(?:access_?)?key|secret_?access_?key)[\"']?\s*[:=]\s*[\"']?"
                          r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"),
}
# A URL "password" that is a template slot, not a value: ${DB_PASSWORD}, {password}, <pass>, %s, ***.
URL_PW_TEMPLATE = re.compile(r"^(?:\$\{?[A-Za-z_]\w*\}?|\{+[^{}]*\}+|<[^<>]*>|%\(?\w*\)?s|\*+)$")
PRIVATE_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
                           r"(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)")
HEXISH = re.compile(r"^(?:[0-9a-fA-F]{16,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                    r"[0-9a-fA-F]{12})$")
NOT_PHONE = re.compile(r"^(?:\d{4}-\d{2}-\d{2}|\d+\.\d+)$|^\d{4}-\d{2}-\d{2}[T ]")  # dates, decimals
_FIRST_GROUP = re.compile(r"\D*(\d+)")
NOT_NUMBER = re.compile(r"\d+\.\d+|\d{1,3}(?:\.\d{1,3}){3}")  # a whole run that is a decimal or a dotted quad
_TOKEN_RIGHT = re.compile(r"[A-Za-z0-9_\-.+/=~]*")
_TOKEN_LEFT = re.compile(r"[A-Za-z0-9_]*$")
# Credential markers: a string without one never reaches detect-secrets.
SECRET_LITERALS = ["A3T", "AKIA", "ASIA", "ABIA", "ACCA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_",
                   "glpat-", "gldt-", "glptt-", "glrt-", "glsoat-", "glft-", "glimt-", "glagent-", "glcbt-", "gloas-", "xox",
                   "hooks.slack.com", "xapp-", "sk-", "sk_live_", "rk_live_", "sk_test_", "rk_test_", "SG.", "npm_", "pypi-", "eyJ", "PRIVATE KEY",
                   "aws", "AWS", "Aws", "SecretAccessKey", "secret_access_key", "SECRET_ACCESS_KEY"]
SECRET_MARKERS = "|".join(re.escape(x) for x in SECRET_LITERALS) + r"|://[^\s/@:]*:[^\s/@]+@"
@dataclass(frozen=True, order=True)
class Span:
    """A detected value: ``text[start:end]`` is of type ``kind`` (e.g. ``EMAIL``)."""

    start: int
    end: int
    kind: str


def _basic_auth_ok(token: str) -> bool:
    try:
        return ":" in base64.b64decode(token + "=" * (-len(token) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False


def resolve_overlaps(spans: list[Span]) -> list[Span]:
    """Keep the highest-priority (then longest) span of each overlapping group; sorted by start."""
    rank = {k: i for i, k in enumerate(PRIORITY)}
    order = sorted(spans, key=lambda s: (rank.get(s.kind, len(PRIORITY)), -(s.end - s.start), s.start))
    kept: list[Span] = []
    for s in order:
        if all(s.end <= k.start or s.start >= k.end for k in kept):
            kept.append(s)
    return sorted(kept)


_GROUP = re.compile(r"\d+")
_GROUP_B = re.compile(rb"\d+")
_TOKEN_TABLE = bytes(97 if chr(i).isascii() and (chr(i).isalnum() or chr(i) in "_-") else 32 for i in range(256))
_LONG_TOKEN = b"a" * 20  # 20 token characters in a row
_AWS_SECRET_NAME = re.compile(rb"(?i)secret_?access_?key")  # an AWS secret (base64: '/' '+' split tokens)
_NUM_TABLE = bytes(48 if 48 <= i <= 57 else 120 for i in range(256))  # digit -> "0", else "x"
_SEPARATORS = b" \t().-/"
_SEVEN_DIGITS = b"0" * 7
_WORD_BYTES = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
# JSON escapes other than \t stand for characters that end a digit run, like the escape's backslash
# does, but their letter (``n`` of ``\n``, hex of ``\u001f``) would block a run that follows.
_JSON_ESCAPE = re.compile(rb"\\(?:[nrfb]|u00[0-9A-Fa-f]{2})")
_NOT_PHONE_B = re.compile(NOT_PHONE.pattern.encode())
_NOT_NUMBER_B = re.compile(NOT_NUMBER.pattern.encode())
# IBAN shape on bytes with uppercase -> "A", digits -> "0", spaces and dashes deleted: two letters, two digits, 11+ more
_IBAN_TABLE = bytes(65 if 65 <= i <= 90 else 48 if 48 <= i <= 57 else 46 for i in range(256))
_IBAN_SHAPE = re.compile(rb"AA00[A0]{11}").search
# An IPv6 address with two or more groups (what ``_ipv6`` accepts) has eight groups or a "::" with
# a group on each side or two on one side; a time (12:30:45), ``file:42:13`` or ``std::vector`` has not.
_IPV6_EIGHT = re.compile(rb":[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}"
                         rb":[0-9A-Fa-f]{1,4}:").search
_OTHER_DIGIT = re.compile(r"[^\D0-9]").search  # a digit of another script (what ``\d`` matches beyond 0-9)
_IPV6_GAP = re.compile(rb"[0-9A-Fa-f]::[0-9A-Fa-f]|[0-9A-Fa-f]:[0-9A-Fa-f]{1,4}::|::[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]").search
# An IPv6 address ending in an IPv4 one, also written out without "::" (``0:0:0:0:0:ffff:192.0.2.1``).
_IPV6_V4 = re.compile(rb":\d{1,3}\.\d{1,3}\.\d{1,3}\.\d").search
MAX_GROUPS = {"CARD": 5, "PHONE": 6}
# Trigger groups (``Detectors.fired``), each gating its detectors in ``Detectors.scan``.
GROUPS = frozenset({"email", "ipv4", "iban", "digits", "ipv6", "secrets", "auth_header", "terms"})


def _group_spans(cand: str, offset: int, kind: str, ok: Any) -> list[Span]:
    """Spans of ``kind`` inside a digit-run candidate, tried on whole digit groups, longest first.

    A run such as ``+44 20 7946 0958 4111 1111 1111 1111`` holds a phone number and a card
    side by side; each sequence of consecutive groups (up to ``MAX_GROUPS``) is checked with
    ``ok(text, digits)``, and a hit consumes its groups. A phone number does not start in the
    middle of evenly separated groups (``4111 0203 8087 1234`` holds no ``0203 8087``) unless it
    starts after a hit or with ``+``/``(``.
    """
    groups = [(m.start(), m.end()) for m in _GROUP.finditer(cand)]
    out, i, resume = [], 0, 0
    while i < len(groups):
        if kind == "PHONE" and i > resume and cand[groups[i - 1][1]:groups[i][0]] in (" ", "-"):
            i += 1
            continue
        hit = None
        for j in range(min(len(groups), i + MAX_GROUPS[kind]) - 1, i - 1, -1):
            start, end = groups[i][0], groups[j][1]
            if kind == "CARD" and j > i and (
                    tuple(b - a for a, b in groups[i:j + 1]) not in CARD_GROUPS
                    or any(cand[groups[k][1]:groups[k + 1][0]] not in (" ", "-") for k in range(i, j))):
                continue
            if kind == "PHONE":
                if any("/" in g and g != "/" for g in (cand[groups[k][1]:groups[k + 1][0]] for k in range(i, j))):
                    continue  # " / " separates two numbers in a list; "030/123456" is one
                start -= 1 if start > 0 and cand[start - 1] in "+(" else 0
                start -= 1 if start > 0 and cand[start] == "(" and cand[start - 1] == "+" else 0
                end += 1 if end < len(cand) and cand[end] == ")" and "(" in cand[start:end] else 0
            if ok(cand[start:end], sum(b - a for a, b in groups[i:j + 1])):
                hit = (start, end, j)
                break
        if hit is None:
            i += 1
            continue
        out.append(Span(offset + hit[0], offset + hit[1], kind))
        i = resume = hit[2] + 1
    return out


def _ipv6_hit(data: bytes) -> bool:
    """An IPv6 shape ``_ipv6`` may accept (see ``_IPV6_GAP``, ``_IPV6_V4``)."""
    if b"::" in data and _IPV6_GAP(data):
        return True
    if b"." in data and _IPV6_V4(data):
        return True
    return data.count(b":") >= 7 and _IPV6_EIGHT(data) is not None


class Detectors:
    """The configured detectors. Build once; ``find`` is thread-safe (no mutable state)."""

    def __init__(self, cfg: RedactionConfig | None = None) -> None:
        self.cfg = cfg or RedactionConfig()
        self.on = set(self.cfg.detectors)
        self._allow = [ipaddress.ip_network(n, strict=False) for n in self.cfg.ip_allowlist]
        self._terms = [(t, re.compile(rf"(?i:(?<![{_W}])(?:" + "|".join(
            re.escape(w.strip()) for w in sorted(words, key=len, reverse=True)) + rf")(?![{_W}]))"))
            for t, words in sorted(self.cfg.terms.items()) if words] if "terms" in self.on else []
        self._secret_re = re.compile(SECRET_MARKERS) if "secrets" in self.on else None
        self._build_triggers()

    def _build_triggers(self) -> None:
        """Cheap triggers, run on UTF-8 bytes, each opening one or more groups (``GROUPS``) of
        detectors: substring tests, byte-table translations and a few literal-led regexes (an
        alternation of them in one ``re`` pattern is ~10x slower). All are boundary-free supersets
        of what their detectors find, so they also fire on JSON-serialised text. A credential is a
        long token run holding a credential marker, a URL with a password, a key block or an AWS
        secret's name. Non-ASCII text adds two checks: digits of other scripts, non-ASCII terms."""
        on = self.on
        self._nums = re.compile(rb"\d[\d \t().\-/]{5,}\d").finditer
        self._url = re.compile(rb"://[^\s/@:]*:[^\s/@]+@").search
        self._marker = re.compile(SECRET_MARKERS.encode()).search
        words = [w.strip().lower() for _, ws in self.cfg.terms.items() for w in ws] if "terms" in on else []
        words_b = [w.encode() for w in words if w.isascii()]
        self._words_u = [w for w in words if not w.isascii()]
        ip4 = re.compile(rb"\.\d{1,3}\.\d{1,3}\.\d").search  # literal-led: fast
        checks: list[tuple[frozenset[str], bool, Callable[[bytes], Any]]] = [
            (frozenset({"email"}), "email" in on, lambda d: b"@" in d or b"%40" in d),
            (frozenset({"ipv4"}), "ip" in on, ip4),
            (frozenset({"iban"}), bool(on & {"iban", "card"}),  # a card inside an IBAN shape is none
             lambda d: _IBAN_SHAPE(d.translate(_IBAN_TABLE, b" -"))),
            (frozenset({"digits"}), bool(on & {"phone", "card"}), self._digit_hit),
            (frozenset({"ipv6"}), "ip" in on, _ipv6_hit),
            (frozenset({"secrets"}), "secrets" in on, self._secret_hit),
            (frozenset({"auth_header"}), "auth_header" in on, lambda d: b"bearer" in (low := d.lower()) or b"basic" in low),
            (frozenset({"terms"}), bool(words_b), lambda d: any(w in d.lower() for w in words_b)),
        ]
        self._checks = [(g, f) for g, enabled, f in checks if enabled]
        self._other_digits = frozenset({"iban", "ipv4", "digits"}) if on & {"iban", "card", "phone", "ip"} else None

    def triggered(self, text: str | bytes) -> bool:
        """True when ``text`` may hold something a detector finds (no false negatives)."""
        data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        return any(f(data) for _, f in self._checks) or (not data.isascii() and bool(self._non_ascii(text, data)))

    def fired(self, text: str | bytes) -> frozenset[str]:
        """The detector groups (``GROUPS``) whose trigger fires on ``text``: ``scan`` needs only these."""
        data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        out = frozenset().union(*(g for g, f in self._checks if f(data)))
        return out if data.isascii() else out | self._non_ascii(text, data)

    def _non_ascii(self, text: str | bytes, data: bytes) -> frozenset[str]:
        """Groups opened by non-ASCII text: digits of other scripts, non-ASCII terms."""
        utext = text if isinstance(text, str) else data.decode("utf-8", "replace")
        out: frozenset[str] = frozenset()
        if self._other_digits and _OTHER_DIGIT(utext):
            out = self._other_digits
        if self._words_u and any(w in utext.lower() for w in self._words_u):
            out |= {"terms"}
        return out

    def _secret_hit(self, data: bytes) -> bool:
        return (b"PRIVATE KEY" in data or self._url(data) is not None
                or (_LONG_TOKEN in data.translate(_TOKEN_TABLE) and self._marker(data) is not None)
                or ((b"ccess" in data or b"CCESS" in data) and _AWS_SECRET_NAME.search(data) is not None))

    def _digit_hit(self, data: bytes) -> bool:
        """A run of digits and separators in which ``DIGITS`` may find a card or phone number.

        C-speed first: digits become ``0``, separators are deleted, anything else becomes ``x``,
        so a candidate (7+ digits) is seven ``0`` in a row; only then are the runs looked at."""
        if _SEVEN_DIGITS not in data.translate(_NUM_TABLE, _SEPARATORS + b"\\t"):
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
        if "card" in self.on and _group_spans(run, 0, "CARD", self._card_ok):
            return True
        if "phone" not in self.on:
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

    @cached_property
    def _plugins(self) -> list[Any]:
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

        by_name = {cls.__name__: cls for cls in get_mapping_from_secret_type_to_class().values()}
        missing = [n for n in self.cfg.secret_plugins if n not in by_name]
        if missing:
            raise ValueError(f"redaction.secret_plugins: unknown detect-secrets plugins {missing}; "
                             f"known: {', '.join(sorted(by_name))}")
        return [by_name[n]() for n in self.cfg.secret_plugins]

    def find(self, text: str) -> list[Span]:
        """Every detected span of ``text``, overlaps resolved, sorted by start."""
        groups = self.fired(text) if text else None
        return self.scan(text, groups) if groups else []

    def scan(self, text: str, groups: Collection[str] = GROUPS) -> list[Span]:
        """The detectors of ``groups`` (default all: what the triggers must cover) on ``text``,
        overlaps resolved, sorted by start."""
        spans: list[Span] = []
        on = self.on
        if "email" in groups and "email" in on and ("@" in text or "%40" in text):
            spans += [Span(m.start(), m.end(), "EMAIL") for m in EMAIL.finditer(text)]
        if "iban" in groups or "ipv4" in groups or "digits" in groups:
            spans += self._numeric(text, groups)
        if "ipv6" in groups and "ip" in on and ":" in text:
            spans += self._ipv6(text)
        if "secrets" in groups and self._secret_re is not None and self._secret_re.search(text):
            spans += self._secrets(text)
        if "auth_header" in groups and "auth_header" in on:
            spans += self._auth(text)
        if "terms" in groups:
            for kind, rx in self._terms:
                spans += [Span(m.start(), m.end(), kind) for m in rx.finditer(text)]
        return resolve_overlaps(spans) if spans else []

    # ------------------------------------------------------------------ categories

    def _numeric(self, text: str, groups: Collection[str]) -> list[Span]:
        out: list[Span] = []
        # checksum or not, no card inside an IBAN shape (none when the IBAN trigger, a superset, is silent)
        ibanish = [(m.start(), m.end()) for m in IBAN.finditer(text)] if "iban" in groups else []
        if "iban" in self.on:
            out += [Span(a, b, "IBAN") for a, b in ibanish if iban_ok(text[a:b])]
        if "ipv4" in groups and "ip" in self.on and "." in text:
            out += [Span(m.start(), m.end(), "IPV4") for m in IPV4.finditer(text) if self._ip_ok(m.group())]
        if "digits" in groups and self.on & {"card", "phone"}:
            for m in DIGITS.finditer(text):
                if sum(c.isdigit() for c in m.group()) >= 7 and not NOT_NUMBER.fullmatch(m.group()):
                    if "card" in self.on:
                        out += [c for c in _group_spans(m.group(), m.start(), "CARD", self._card_ok)
                                if not any(a < c.end and c.start < b for a, b in ibanish)]
                    if "phone" in self.on:
                        out += _group_spans(m.group(), m.start(), "PHONE", self._phone_ok)
        return out

    @staticmethod
    def _card_ok(text: str, digits: int) -> bool:
        return 13 <= digits <= 19 and card_ok(text)

    def _phone_ok(self, text: str, digits: int) -> bool:
        """A valid number in one of the configured regions (``phonenumbers``), not a date or decimal.

        Without a ``+`` the digits must be written as that region writes them: its national format
        (trunk prefix included: ``030 123456``, not ``30123456``; a first digit group, if any, as
        the region groups it: ``415-555-2671``, not ``2026-060945``) or country code and number after
        an international prefix (``0044 20 7946 0958``; NANP also ``1 415 555 2671``). Ids, order
        numbers, ISBNs and timestamps that merely parse as a valid national number are left alone.
        """
        import phonenumbers as pn

        if not 7 <= digits <= 15 or NOT_PHONE.match(text):
            return False
        plus = text.lstrip("(（")[:1] in "+＋"
        raw = pn.normalize_digits_only(text)
        for region in self.cfg.phone_regions:
            try:
                num = pn.parse(text, region)
            except pn.NumberParseException:
                continue
            if not pn.is_valid_number(num):
                continue
            if plus:
                return True
            full = f"{num.country_code}{pn.national_significant_number(num)}"
            national = pn.format_number(num, pn.PhoneNumberFormat.NATIONAL)
            if raw == pn.normalize_digits_only(national) and (
                    raw == pn.normalize_digits_only(_FIRST_GROUP.match(text).group(1))  # type: ignore[union-attr]
                    or _FIRST_GROUP.match(text).group(1) == _FIRST_GROUP.match(national).group(1)):  # type: ignore[union-attr]
                return True
            if raw.endswith(full) and (raw[:-len(full)] in ("00", "011") or (raw == full and num.country_code == 1)):
                return True  # international prefix, or NANP's 1 (a bare 44 or 49 in front is too often an id)
        return False

    def _ip_ok(self, raw: str) -> bool:
        """A valid address outside ``ip_allowlist``; an IPv4-mapped one is checked as its IPv4 too."""
        try:
            ip = ipaddress.ip_address(raw)
        except ValueError:
            return False
        ips = [ip, ip.ipv4_mapped] if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else [ip]
        return not any(a.version == n.version and a in n for a in ips for n in self._allow)

    def _ipv6(self, text: str) -> list[Span]:
        out = []
        for m in IPV6.finditer(text):
            raw = m.group()
            if sum(1 for g in raw.split(":") if g) < 2 or not any(c.isdigit() for c in raw):
                continue
            try:
                ipaddress.IPv6Address(raw)
            except ValueError:
                continue
            if self._ip_ok(raw):
                out.append(Span(m.start(), m.end(), "IPV6"))
        return out

    def _auth(self, text: str) -> list[Span]:
        out = []
        for m in AUTH.finditer(text):
            scheme, token = m.group(1).lower(), m.group(2)
            if scheme == "basic":
                token = token.rstrip(".")  # a sentence's full stop: base64 has no dots (token68 may)
            ok = (len(token) >= 16 and any(c.isdigit() for c in token) and any(c.isalpha() for c in token)) \
                if scheme == "bearer" else _basic_auth_ok(token)
            if ok:
                out.append(Span(m.start(2), m.start(2) + len(token), "AUTH_HEADER"))
        return out

    def _secrets(self, text: str) -> list[Span]:
        out = [Span(m.start(), m.end(), "PRIVATE_KEY") for m in PRIVATE_BLOCK.finditer(text)]
        for kind, rx in OWN_SECRETS.items():
            out += [Span(m.start(rx.groups), m.end(rx.groups), kind) for m in rx.finditer(text)
                    if kind != "URL_PASSWORD" or not URL_PW_TEMPLATE.match(m.group(1))]
        for plugin in self._plugins:
            kind = SECRET_TYPES.get(plugin.secret_type, "SECRET")
            if kind == "PRIVATE_KEY":
                continue  # whole blocks, above
            for value in set(plugin.analyze_string(text)):
                if not value or HEXISH.match(value) or (kind == "URL_PASSWORD" and URL_PW_TEMPLATE.match(value)):
                    continue
                out += self._locate(text, value, kind)
        return out

    @staticmethod
    def _locate(text: str, value: str, kind: str) -> list[Span]:
        """Spans of ``value`` in ``text``, widened to the whole token (plugins may yield a prefix)."""
        out, i = [], text.find(value)
        while i != -1:
            start, end = i, i + len(value)
            if kind != "URL_PASSWORD":
                start -= len(_TOKEN_LEFT.search(text, 0, start).group())  # type: ignore[union-attr]
                end = _TOKEN_RIGHT.match(text, end).end()  # type: ignore[union-attr]
                while end > start and text[end - 1] == ".":
                    end -= 1
            out.append(Span(start, end, kind))
            i = text.find(value, i + len(value))
        return out
