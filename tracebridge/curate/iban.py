"""The trigger of IBANs on bytes, upper and lower case (``iban_hit``).

An IBAN is printed in upper case, in one run or grouped by spaces or dashes (``detectors.IBAN``); typed
into a chat or a form it is often lower case, grouped in fours as printed (``de89 3704 0044 0532 0130 00``:
``detectors.IBAN_LOWER``). A lower-case one is taken only where its country's length and mod-97 check
hold (``checksums.iban_ok``), as an upper-case one is. One lower-case run (``de89370400440532013000``) is
not looked for: lower-case ids and hex hashes hold that shape everywhere, and its prescan pattern made
the prescan of every record ~25% slower (the grouped one costs nothing measurable). ``iban_hit`` is the
trigger (``tracebridge.curate.triggers``): the upper-case shape with spaces and dashes deleted, or a
lower-case candidate that passes the check, on text and on JSON-serialised text alike; ``lower_spans`` finds
them in text. Typed, the groups are apart by more than a blank (``SEP``): a tab, a line break (``de89 3704
0044\n0532 0130 00``), a non-breaking space, a URL query's ``+`` or ``%20`` (``?iban=de89%203704%20…``), and
in JSON inside a string an escaped tab or line end (``\\n``), after which one may start too; the country may
be capitalised (``De89 …``, a sentence's start), and the groups run on where the country's length ends (``be68
5390 0754 7034 then``). One lower-case run is taken after an ``iban`` label or under an ``iban`` key
(``?iban=de89370400440532013000``, ``{"iban": "de89…"}``: ``iban_keyed``), where the label says what it is. Pure; no I/O.
"""

from __future__ import annotations

import re

from tracebridge.curate.checksums import IBAN_LENGTHS, iban_ok

# Upper case on bytes: uppercase -> "A", digits -> "0", spaces and dashes deleted: two letters, two digits, 11+ more
_IBAN_TABLE = bytes(65 if 65 <= i <= 90 else 48 if 48 <= i <= 57 else 46 for i in range(256))
_IBAN_SHAPE = re.compile(rb"AA00[A0]{11}").search
# What lies between two groups: a blank, a tab, a line break, a non-breaking space, a query's ``+``/``%20``, an
# escaped tab or line end (JSON inside a string, any depth); on bytes also JSON's escapes of the raw ones.
SEP = r"(?:[ \t\u00a0+]|%20|\r?\n|\\+(?:r\\+)?[nt])"
_SEP_B = rb"(?:[ \t+]|\xc2\xa0|%20|\r?\n|\\+(?:r\\+)?[nt])"
# Lower case (the country maybe capitalised), grouped in fours, after no ASCII word character or after an
# escape's letter (``\nde89 …``); the end is left open (the country's length is tried: ``lower_spans``).
LOWER = re.compile(rf"(?:(?<![A-Za-z0-9_])|(?<=\\[nrtbf]))[A-Za-z][a-z]\d{{2}}(?:{SEP}[a-z0-9]{{4}}){{2,7}}"
                   rf"(?:{SEP}[a-z0-9]{{1,3}})?")
_LOWER_B = re.compile(rb"(?:(?<![A-Za-z0-9_])|(?<=\\[nrtbf]))[A-Za-z][a-z]\d{2}(?:" + _SEP_B + rb"[a-z0-9]{4}){2,7}"
                      rb"(?:" + _SEP_B + rb"[a-z0-9]{1,3})?")
# letters "a", digits "0", what may start a separator " " (a blank, tab, line break, ``+``, ``%``, ``\\``, nbsp's lead)
_LOWER_TABLE = bytes(97 if 97 <= i <= 122 or 65 <= i <= 90 else 48 if 48 <= i <= 57
                     else 32 if i in b" \t\r\n+%\\\xc2" else 46 for i in range(256))
_LOWER_HEAD = re.compile(rb"aa00 ").search  # on bytes through ``_LOWER_TABLE``
# the prescan's pattern of ``_LOWER_B``: two groups after the country and check digits
LOWER_PRESCAN = rb"[A-Za-z][a-z]\d\d" + _SEP_B + rb"[a-z0-9]{4}" + _SEP_B + rb"[a-z0-9]{4}"
# One run in lower case after an ``iban`` label (``?iban=de89370400440532013000``, ``"iban": "de89…"``), or under
# an ``iban`` key (``iban_keyed``): there the label says what the run is
_LABELLED = re.compile(r"(?ai)(?<![a-z0-9])iban[\"'\\]*[ \t]*[:=][ \t]*[\"'\\]*([a-z]{2}\d{2}[a-z0-9]{11,30})(?![A-Za-z0-9_])")
_LABELLED_B = re.compile(_LABELLED.pattern.encode())
LABELLED_PRESCAN = rb"iban[\"'\\ \t:=]{1,16}[a-z][a-z]\d\d[a-z0-9]{11}"  # case-blind
_KEY = re.compile(r"(?ai)(?:[a-z]+[_-])?iban")
_KEYED = re.compile(r"[ \t]*([A-Za-z]{2}\d{2}[A-Za-z0-9]{11,30})[ \t]*")
_ALNUM = re.compile(r"[A-Za-z0-9]")
_PIECE = re.compile(rf"({SEP})|([A-Za-z0-9])")
_WORD = re.compile(r"\w")


def iban_hit(data: bytes) -> bool:
    """Whether ``data`` may hold an IBAN ``Detectors`` finds, or an upper-case IBAN shape (a card inside
    one is none): a superset of both."""
    if _IBAN_SHAPE(data.translate(_IBAN_TABLE, b" -")) is not None:
        return True
    if (b"iban" in data or b"IBAN" in data or b"Iban" in data) and any(
            iban_ok(m.group(1).decode("ascii").upper()) for m in _LABELLED_B.finditer(data)):
        return True
    if _LOWER_HEAD(data.translate(_LOWER_TABLE)) is None:
        return False  # no lower-case letters, digits and a blank in that order (one C pass; the regex only then)
    return any(_country_length(m.group().decode("utf-8", "replace")) is not None for m in _LOWER_B.finditer(data))


def _country_length(run: str) -> int | None:
    """Where in ``run``, a ``LOWER`` match, the IBAN of its country's length ends (after a whole group), or None
    where its first characters of that length fail the check."""
    n = IBAN_LENGTHS.get(run[:2].upper())
    if n is None:
        return None
    ends = [m.end() for m in _PIECE.finditer(run) if m.lastindex == 2]  # characters, not separators
    if len(ends) < n or (ends[n - 1] < len(run) and _ALNUM.match(run, ends[n - 1])):
        return None  # too short, or its length ends mid-group
    return ends[n - 1] if iban_ok("".join(run[e - 1] for e in ends[:n]).upper()) else None


def iban_keyed(name: str, value: str) -> tuple[int, int] | None:
    """Where ``value``, a record's string under the dict key ``name`` (``iban``, ``payee_iban``), is an IBAN in one run
    of any case (``{"iban": "de89370400440532013000"}``), else None."""
    m = _KEYED.fullmatch(value) if _KEY.fullmatch(name) else None
    return m.span(1) if m and iban_ok(m.group(1).upper()) else None


def lower_spans(text: str) -> list[tuple[int, int]]:
    """The lower-case IBANs of ``text`` (``LOWER``, checked) as ``(start, end)``: none with more of a word after it;
    and one run after an ``iban`` label."""
    out = [m.span(1) for m in _LABELLED.finditer(text) if iban_ok(m.group(1).upper())]
    for m in LOWER.finditer(text):
        end = _country_length(m.group())
        if end is not None and not _WORD.match(text, m.start() + end):
            out.append((m.start(), m.start() + end))
    return out
