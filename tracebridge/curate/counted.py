"""When a bare digit run that parses as a phone number is a count or an id instead.

Context that makes a bare digit run (no separator, no "+") a count or an id, not a phone number: a
numero sign in front (``order #4148422466``, ``issue #20231``); a label of size, count, checksum or
seed right before it (``size=2147483648``, ``RSS 4194304000``, ``tokens_seen=3276800000``, ``crc32
2596996162``, ``random.seed(4155552671)``); or a unit of size or time, a plural noun of count (7+
digits count in plural) or an ``ls -l`` date after it (``2176667456 bytes``, ``8589934592 KiB``,
``4155552671 rows``, ``staff 2147483648 Nov 29 13:00 model.bin``), in text and JSON text (``"size": "…"``). A phone number is written with none
of these. A bare run is a phone number only with a phone word near it in the first place
(``tracebridge.curate.phone_context``: ``"phone": "4155552671"``, not ``"user_id": "…"``); these rules
refuse it even then (``call 4155552671 rows``). Pure; no I/O.
"""

from __future__ import annotations

import re

from tracebridge.curate.triggers import WORD_CHARS as _W

_NUMERO = frozenset("#№")
# ``ls -l``: the size, then the month, day and time or year (``2147483648 Nov 29 13:00``, ``… Nov 29  2025``)
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[ \t]{1,2}\d{1,2}[ \t]{1,2}(?:\d{1,2}:\d\d|\d{4})"
_UNIT = re.compile(
    r"(?i)[ \t]?(?:bytes|[kmgtp]i?b|[mµun]s|secs|seconds|rows|records|items|tokens|lines|chars"
    rf"|characters|files|requests|events|{_MONTH})(?![{_W}])"
)
_LABEL = re.compile(
    r"(?i)(?<![A-Za-z])(?:[a-z]+_)?(?:size|bytes|len|length|offset|total|rss|vsz"
    r"|inode|crc|crc32|adler|adler32|checksum|seed|step|steps|tokens|tokens_seen|params|numel|count|blocks"
    r"|mem|memory)[\"']?[ \t]{0,2}[:=(]?[ \t]{0,2}[\"']?\Z"
)


def counted(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]``, a phone number, is a bare run its context makes an id or count."""
    return text[start:end].isdigit() and (
        text[start - 1 : start] in _NUMERO
        or _UNIT.match(text, end) is not None
        or _LABEL.search(text, max(0, start - 40), start) is not None
    )
