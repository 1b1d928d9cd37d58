"""The trigger of IBANs on bytes, upper and lower case (``iban_hit``).

An IBAN is printed in upper case, in one run or grouped by spaces or dashes (``detectors.IBAN``); typed
into a chat or a form it is often lower case, grouped in fours as printed (``de89 3704 0044 0532 0130 00``:
``detectors.IBAN_LOWER``). A lower-case one is taken only where its country's length and mod-97 check
hold (``checksums.iban_ok``), as an upper-case one is. One lower-case run (``de89370400440532013000``) is
not looked for: lower-case ids and hex hashes hold that shape everywhere, and its prescan pattern made
the prescan of every record ~25% slower (the grouped one costs nothing measurable). ``iban_hit`` is the
trigger (``tracebridge.curate.triggers``): the upper-case shape with spaces and dashes deleted, or a
lower-case candidate that passes the check, on text and on JSON-serialised text alike. Pure; no I/O.
"""

from __future__ import annotations

import re

from tracebridge.curate.checksums import IBAN_LENGTHS, iban_ok

# Upper case on bytes: uppercase -> "A", digits -> "0", spaces and dashes deleted: two letters, two digits, 11+ more
_IBAN_TABLE = bytes(65 if 65 <= i <= 90 else 48 if 48 <= i <= 57 else 46 for i in range(256))
_IBAN_SHAPE = re.compile(rb"AA00[A0]{11}").search
# Lower case, grouped in fours, on bytes: after no ASCII word character or after a JSON escape's letter
# (``\nde89 …``); the end is left open (a superset: the check below tries the country's length).
_LOWER_B = re.compile(rb"(?:(?<![A-Za-z0-9_])|(?<=\\[nrtbf]))[a-z]{2}\d{2}(?: [a-z0-9]{4}){2,7}(?: [a-z0-9]{1,3})?")
_LOWER_TABLE = bytes(97 if 97 <= i <= 122 else 48 if 48 <= i <= 57 else 32 if i == 32 else 46 for i in range(256))
_LOWER_HEAD = re.compile(rb"aa00 ").search  # on bytes through ``_LOWER_TABLE``: letters "a", digits "0"
# the prescan's pattern of ``_LOWER_B``: two groups after the country and check digits
LOWER_PRESCAN = rb"[a-z][a-z]\d\d [a-z0-9]{4} [a-z0-9]{4}"


def iban_hit(data: bytes) -> bool:
    """Whether ``data`` may hold an IBAN ``Detectors`` finds, or an upper-case IBAN shape (a card inside
    one is none): a superset of both."""
    if _IBAN_SHAPE(data.translate(_IBAN_TABLE, b" -")) is not None:
        return True
    if _LOWER_HEAD(data.translate(_LOWER_TABLE)) is None:
        return False  # no lower-case letters, digits and a blank in that order (one C pass; the regex only then)
    for m in _LOWER_B.finditer(data):
        compact = m.group().replace(b" ", b"").upper().decode("ascii")
        n = IBAN_LENGTHS.get(compact[:2])
        if n is not None and len(compact) >= n and iban_ok(compact[:n]):
            return True
    return False
