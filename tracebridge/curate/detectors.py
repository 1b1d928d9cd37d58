"""PII and credential detectors: find typed spans in a string, cheaply.

``Detectors.find(text)`` returns non-overlapping ``Span(start, end, kind)`` for e-mail addresses, phone numbers
(``phonenumbers``), US Social Security numbers (``tracebridge.curate.ssn``), payment cards (Luhn), IBANs (mod 97),
IPv4/IPv6 addresses, credentials (``detect-secrets`` plugins plus bearer/basic auth headers, the shapes in
``OWN_SECRETS`` that the plugins miss, and credentials by context: a value after a secret name, ``curl -u
user:password``, base64 of ``user:password``; ``tracebridge.curate.credentials``) and user terms; ``keyed`` finds a
record's string that is a secret by its dict key or argv flag. Recall and precision are measured on a labelled
corpus by ``scripts/chaos_pii.py``. Cost is kept low by a two-level scheme:

1. ``Detectors.fired`` (``tracebridge.curate.triggers``) — cheap triggers on UTF-8 bytes (``@``, digit runs that
   ``DIGITS`` may find a card or phone number in, IBAN and IPv4/IPv6 shapes, known credential prefixes, secret names
   before a separator, base64 runs, user terms), each a substring test, a byte-table translation or a literal-led
   regex, and each a superset of what its detectors find, on text and on JSON-serialised text alike. A string
   without a trigger is clean (``triggered``). Dates, times, ``file:line:col``, UUIDs and version numbers, which
   tool outputs are full of, trip none.
2. ``scan`` runs only the detector groups whose trigger fired: ``phonenumbers`` only on digit-run candidate spans,
   ``detect-secrets`` only on strings with a credential marker (its entropy plugins are off: they flag the hex
   hashes and ids that traces are full of; hex and UUID values are filtered out in any case).

This module holds the detectors' patterns, ``Span``, overlap resolution and ``scan``; the triggers, and the patterns
both levels share, are in ``tracebridge.curate.triggers``, the credential patterns in
``tracebridge.curate.credential_shapes`` and ``tracebridge.curate.credentials``. Pure and deterministic; no I/O.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from bisect import bisect_left
from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from typing import Any

from tracebridge.curate.checksums import card_ok, iban_ok
from tracebridge.curate.config import RedactionConfig
from tracebridge.curate.cookies import cookie_keyed, cookie_spans
from tracebridge.curate.counted import counted
from tracebridge.curate.credential_shapes import (
    AUTH,
    HEXISH,
    OWN_SECRETS,
    PRIVATE_BLOCK,
    basic_auth_ok,
    twilio_spans,
)
from tracebridge.curate.credentials import base64_texts, keyed_spans, keyword_spans, user_password
from tracebridge.curate.iban import iban_keyed, lower_spans
from tracebridge.curate.obfuscated_email import obfuscated_emails
from tracebridge.curate.pairs import pair_spans
from tracebridge.curate.phone_context import phone_context, phone_key
from tracebridge.curate.phone_shape import phone_ok
from tracebridge.curate.secret_shape import URL_PW_TEMPLATE
from tracebridge.curate.ssn import ssn_keyed, ssn_spans
from tracebridge.curate.triggers import (
    GROUPS,
    MAX_GROUPS,
    NOT_NUMBER,
    SECRET_LITERALS,
    SECRET_MARKERS,
    Triggers,
)
from tracebridge.curate.triggers import WORD_CHARS as _W

log = logging.getLogger(__name__)

# Overlap resolution: a lower index wins over a higher one, then the longer span.
PRIORITY = ("PRIVATE_KEY", "AWS_KEY", "GITHUB_TOKEN", "GITLAB_TOKEN", "SLACK_TOKEN", "ANTHROPIC_KEY", "OPENAI_KEY", "JWT",
            "STRIPE_KEY", "SENDGRID_KEY", "NPM_TOKEN", "PYPI_TOKEN", "GOOGLE_KEY", "HF_TOKEN", "TELEGRAM_TOKEN",
            "DISCORD_WEBHOOK", "AZURE_SAS", "TWILIO_KEY", "URL_PASSWORD", "AUTH_HEADER", "SECRET",
            "EMAIL", "IBAN", "CARD", "IPV6", "IPV4", "SSN", "PHONE")
_CREDENTIAL_GROUPS = frozenset({"secrets", "keywords", "auth_header"})  # re-scanned in decoded base64
# Card number groupings as printed (one run, 4-4-4-4[-x], Amex 4-6-5, Diners 4-6-4, 13-digit Visa 4-3-3-3).
CARD_GROUPS = {(4, 4, 4, 4), (4, 4, 4, 4, 1), (4, 4, 4, 4, 2), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4), (4, 4, 4, 1),
               (4, 4, 4, 2), (4, 4, 4, 3), (4, 3, 3, 3)}
SECRET_TYPES = {
    "AWS Access Key": "AWS_KEY", "GitHub Token": "GITHUB_TOKEN", "GitLab Token": "GITLAB_TOKEN",
    "Slack Token": "SLACK_TOKEN", "OpenAI Token": "OPENAI_KEY", "JSON Web Token": "JWT",
    "Private Key": "PRIVATE_KEY", "Basic Auth Credentials": "URL_PASSWORD", "Stripe Access Key": "STRIPE_KEY",
    "SendGrid API Key": "SENDGRID_KEY", "NPM tokens": "NPM_TOKEN", "PyPI Token": "PYPI_TOKEN",
}

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
# as typed (``de89 3704 0044 0532 0130 00``): lower case, grouped in fours: ``iban.lower_spans``
# A dotted quad after a letter (v1.2.3.4) or before a pre-release tag (1.2.3.4-rc1) is a version.
_QUAD = r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = re.compile(rf"(?<![{_W}\d.]){_QUAD}(?!\.?\d)(?!-[A-Za-z])")
# IPv6, the IPv4-mapped form (``::ffff:192.0.2.1``) whole: its IPv4 is the address that matters.
IPV6 = re.compile(rf"(?<![{_W}:.])(?:(?:[0-9A-Fa-f]{{0,4}}:){{2,6}}{_QUAD}(?!\.?\d)"
                  rf"|(?:[0-9A-Fa-f]{{0,4}}:){{2,7}}[0-9A-Fa-f]{{0,4}}(?![{_W}:]))")
# A credential's marker (``ghp_``, ``AKIA``, ``sk-``) and the parts of the rest (``proj-XXXX``).
_MARKER_PREFIX = re.compile("|".join(re.escape(x) for x in SECRET_LITERALS))
_SEGMENT = re.compile(r"[^_\-.]+")
_TOKEN_RIGHT = re.compile(r"[A-Za-z0-9_\-.+/=~]*")
_TOKEN_LEFT = re.compile(r"[A-Za-z0-9_]*$")
@dataclass(frozen=True, order=True)
class Span:
    """A detected value: ``text[start:end]`` is of type ``kind`` (e.g. ``EMAIL``)."""

    start: int
    end: int
    kind: str


def resolve_overlaps(spans: list[Span]) -> list[Span]:
    """Keep the highest-priority (then longest) span of each overlapping group; sorted by start."""
    rank = {k: i for i, k in enumerate(PRIORITY)}
    order = sorted(spans, key=lambda s: (rank.get(s.kind, len(PRIORITY)), -(s.end - s.start), s.start))
    kept: list[Span] = []  # disjoint, by start: the one before ``s.end`` has the largest end of those that may overlap
    for s in order:  # bisect, not a scan of every kept span: a CSV of 15k ids took 20 s (quadratic)
        i = bisect_left(kept, s.end, key=lambda k: k.start)
        if i == 0 or kept[i - 1].end <= s.start:
            kept.insert(i, s)
    return sorted(kept)


_GROUP = re.compile(r"\d+")


def _group_spans(cand: str, offset: int, kind: str, ok: Any, before: str = "") -> list[Span]:
    """Spans of ``kind`` inside a digit-run candidate, tried on whole digit groups, longest first.

    ``+44 20 7946 0958 4111 1111 1111 1111`` holds a phone number and a card: each sequence of up to
    ``MAX_GROUPS`` groups is checked with ``ok(text, digits)``, a hit consumes its groups. A phone
    number does not start amid evenly separated groups (``4111 0203 8087 1234`` holds no ``0203 8087``)
    but after a hit, with ``+``/``(``, where the run changes style (``2026-01-23 415 555 2671``; ``12:30
    415 555 2671``: ``before`` ``:``/``.`` counts) or grouped unlike its lead (``12 415-555-2671``)."""
    groups = [(m.start(), m.end()) for m in _GROUP.finditer(cand)]
    seps = [cand[:groups[0][0]] if groups else ""] + [cand[a[1]:b[0]] for a, b in pairwise(groups)]
    seps[0] = seps[0] or before * (before in ":.")
    out, i, resume = [], 0, 0
    while i < len(groups):
        lead = seps[i] if kind == "PHONE" and i > resume and seps[i - 1] in ("", seps[i]) else ""
        hit = None
        for j in range(min(len(groups), i + MAX_GROUPS[kind]) - 1, i - 1, -1):
            start, end, inner = groups[i][0], groups[j][1], seps[i + 1:j + 1]  # separators inside
            if lead in (" ", "-") and (j == i or lead in inner):
                continue  # mid-run: one group (ORD-2021-6403466894), or in the style of the groups before it
            if kind == "CARD" and j > i and (tuple(b - a for a, b in groups[i:j + 1]) not in CARD_GROUPS
                                             or any(g not in (" ", "-") for g in inner)):
                continue
            if kind == "PHONE":
                if any("/" in g and g != "/" for g in inner):
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


def _placeholder(token: str) -> bool:
    """Whether a credential's random part (its longest part after the marker) is one character
    repeated (``ghp_XXXX…``, ``AKIAXXXXXXXXXXXXXXXX``, ``sk-proj-0000…``): an issuer's never is."""
    m = _MARKER_PREFIX.match(token)
    return len(set(max(_SEGMENT.findall(token[m.end() if m else 0:]), key=len, default=""))) <= 1


class Detectors(Triggers):
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

    def _card_run(self, run: str) -> bool:
        """Whether the digit run ``run`` holds a card, as ``_numeric`` finds them."""
        return bool(_group_spans(run, 0, "CARD", self._card_ok))

    @cached_property
    def _plugins(self) -> list[Any]:
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

        by_name = {cls.__name__: cls for cls in get_mapping_from_secret_type_to_class().values()}
        missing = [n for n in self.cfg.secret_plugins if n not in by_name]
        if missing:
            raise ValueError(f"redaction.secret_plugins: unknown detect-secrets plugins {missing}; "
                             f"known: {', '.join(sorted(by_name))}")
        return [by_name[n]() for n in self.cfg.secret_plugins]

    def keyed(self, name: str, value: str, argv: bool = False, client: str = "") -> list[Span]:
        """The secret in ``value``, a record's string under the dict key ``name`` (``argv``: after the
        list element ``name``, a ``--flag`` or ``-u``, after curl or wget when ``client`` is
        ``"http"``; a ``-p<password>`` after a MySQL client when it is ``"mysql"``; a client's own
        password flag such as sshpass's ``-p`` when ``client`` lists it, ``"-p"``; ``user%password`` after a
        Samba client's ``-U`` (or joined to it: ``-Ubob%pw``) when it is ``"%"``, ``user,password`` after
        lftp's ``-u`` when it is ``","``; ``pass:password`` after OpenSSL's ``-passin``), which ``value`` alone does not show;
        a Social Security number of any grouping under an ``ssn`` key (``ssn.ssn_keyed``); a phone number under a
        key naming one, bare digit runs too (``phone_context.phone_key``)."""
        if not argv and "ssn" in self.on and (ssn := ssn_keyed(name, value)):
            return [Span(*ssn, "SSN")]
        if not argv and "iban" in self.on and (iban := iban_keyed(name, value)):
            return [Span(*iban, "IBAN")]  # ``{"iban": "de89370400440532013000"}``: one run, the key says what it is
        if not argv and "phone" in self.on and phone_key(name) and (  # ``{"phone": "4155552671"}``: the key is its context
                phones := [p for p in self._numeric(value, ("digits",), bare=True) if p.kind == "PHONE"]):
            return phones
        if "secrets" in self.on and (cookies := cookie_keyed(name, value, argv, client)):
            return [Span(a, b, "SECRET") for a, b in cookies]  # ``{"Cookie": "session=…"}``, ``["curl", "-b", …]``
        if "secrets" not in self.on or (argv and not (name.startswith("--") or name in ("-u", "-U") or client == "mysql"
                                                      or (client == "%" and value[:2] == "-U")
                                                      or (client[:1] == "-" and name in client.split())
                                                      or (name[:5] == "-pass" and "pass:" in value))):
            return []
        return [Span(a, b, "SECRET") for a, b in keyed_spans(name, value, argv, client)]

    def find(self, text: str, keyed: list[Span] | None = None) -> list[Span]:
        """Every detected span of ``text`` (and ``keyed``, from ``keyed``), overlaps resolved, sorted by start."""
        groups = self.fired(text) if text else None
        spans = self.scan(text, groups) if groups else []
        return resolve_overlaps(spans + keyed) if keyed else spans

    def scan(self, text: str, groups: Collection[str] = GROUPS) -> list[Span]:
        """The detectors of ``groups`` (default all: what the triggers must cover) on ``text``,
        overlaps resolved, sorted by start."""
        spans: list[Span] = []
        on = self.on
        if "email" in groups and "email" in on:  # an ``@``; or written out (``jane[at]example[.]com``)
            spans += [Span(m.start(), m.end(), "EMAIL") for m in EMAIL.finditer(text)] if "@" in text or "%40" in text else []
            spans += [Span(a, b, "EMAIL") for a, b in obfuscated_emails(text)]
        if "iban" in groups or "ipv4" in groups or "digits" in groups:
            spans += self._numeric(text, groups)
        if "ipv6" in groups and "ip" in on and ":" in text:
            spans += self._ipv6(text)
        if "secrets" in groups and self._secret_re is not None and self._secret_re.search(text):
            spans += self._secrets(text)
        if "keywords" in groups and "secrets" in on:
            spans += [Span(a, b, "SECRET") for a, b in keyword_spans(text) + pair_spans(text) + cookie_spans(text)]
        if "base64" in groups and "secrets" in on:  # decoded: user:password, or a credential found in it
            spans += [Span(a, b, "SECRET") for a, b, dec in base64_texts(text)
                      if user_password(dec) or self.scan(dec, _CREDENTIAL_GROUPS)]
        if "auth_header" in groups and "auth_header" in on:
            spans += self._auth(text)
        if "terms" in groups:
            for kind, rx in self._terms:
                spans += [Span(m.start(), m.end(), kind) for m in rx.finditer(text)]
        return resolve_overlaps(spans) if spans else []

    # ------------------------------------------------------------------ categories

    def _numeric(self, text: str, groups: Collection[str], bare: bool = False) -> list[Span]:
        """IBANs, IPv4 addresses, cards, phone numbers and SSNs; ``bare``: a bare digit run is a phone
        number without a phone word near it (``phone_context``), as under a dict key naming a phone."""
        out: list[Span] = []
        # checksum or not, no card inside an IBAN shape (none when the IBAN trigger, a superset, is silent);
        # allowlisted or not, no phone number over an IPv4 address (``$67,913.97 127.0.0.9``)
        ibanish = [(m.start(), m.end()) for m in IBAN.finditer(text)] if "iban" in groups else []
        quads = [(m.start(), m.end()) for m in IPV4.finditer(text)] if "." in text else []
        if "iban" in self.on:
            out += [Span(a, b, "IBAN") for a, b in ibanish if iban_ok(text[a:b])]
            if "iban" in groups:  # lower case: no card shape to shield, only a checksum-valid one counts
                out += [Span(a, b, "IBAN") for a, b in lower_spans(text)]
        if "ipv4" in groups and "ip" in self.on:
            out += [Span(a, b, "IPV4") for a, b in quads if self._ip_ok(text[a:b])]
        if "digits" in groups and self.on & {"card", "phone"}:
            for m in DIGITS.finditer(text):
                if sum(c.isdigit() for c in m.group()) >= 7 and not NOT_NUMBER.fullmatch(m.group()):
                    if "card" in self.on:
                        out += [c for c in _group_spans(m.group(), m.start(), "CARD", self._card_ok)
                                if not any(a < c.end and c.start < b for a, b in ibanish)]
                    if "phone" in self.on and (bare or not m.group().lstrip("(").isdigit()
                                               or phone_context(text, m.start() + (m.group()[0] == "("), m.end())):
                        out += [p for p in _group_spans(m.group(), m.start(), "PHONE", self._phone_ok,
                                                        text[m.start() - 1:m.start()])
                                if not counted(text, p.start, p.end) and not any(a < p.end and p.start < b for a, b in quads)
                                and (bare or phone_context(text, p.start, p.end))]  # a bare run needs a phone word: ids
        if "digits" in groups and "ssn" in self.on:
            out += [Span(a, b, "SSN") for a, b in ssn_spans(text)]
        return out

    @staticmethod
    def _card_ok(text: str, digits: int) -> bool:
        return 13 <= digits <= 19 and card_ok(text)

    def _phone_ok(self, text: str, digits: int) -> bool:
        """``phone_ok`` in the configured regions (``tracebridge.curate.phone_shape``)."""
        return phone_ok(text, digits, tuple(self.cfg.phone_regions))

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
                if scheme == "bearer" else basic_auth_ok(token)
            if ok:
                out.append(Span(m.start(2), m.start(2) + len(token), "AUTH_HEADER"))
        return out

    def _secrets(self, text: str) -> list[Span]:
        out = [Span(m.start(), m.end(), "PRIVATE_KEY") for m in PRIVATE_BLOCK.finditer(text)]
        out += [Span(a, b, "TWILIO_KEY") for a, b in twilio_spans(text)]
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
                # a plugin may yield a part (GitHub: "ghp"): each token found by it must be one alone
                out += [t for t in self._locate(text, value, kind)
                        if t.end - t.start == len(value) or plugin.analyze_string(text[t.start:t.end])]
        return [t for t in out if t.kind in ("PRIVATE_KEY", "URL_PASSWORD") or not _placeholder(text[t.start:t.end])]

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
