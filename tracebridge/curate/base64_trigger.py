"""The trigger of base64-encoded credentials (``base64_hit``): a run of base64 characters whose start
decodes to printable text, on bytes. ``tracebridge.curate.triggers`` opens the ``base64`` detector
group with it; ``credentials.base64_texts`` decodes the runs it may find. Pure; no I/O.
"""

from __future__ import annotations

import base64
import binascii

_B64_TABLE = bytes(97 if chr(i).isascii() and (chr(i).isalnum() or chr(i) in "+/") else 32 for i in range(256))
B64_LONG = b"a" * 16
B64_PRINTABLE = frozenset(range(32, 127)) | {9, 10, 13}  # what a decoded base64 credential may hold
# The first character of base64 of such text (``C D I-Z a-f``): a path's ``/`` or a digit is none.
_B64_FIRST = frozenset(base64.b64encode(bytes([b, 32, 32]))[0] for b in B64_PRINTABLE)


def base64_hit(data: bytes, lo: int = 0, hi: int | None = None) -> bool:
    """A run of 16-1029 base64 characters (in ``data[lo:hi]``) whose first 16 decode to
    ``B64_PRINTABLE``. In JSON a run may start with an escape's letters (``\\n``, ``\\u00e9``):
    after a backslash, offsets 1 and 5 too."""
    hi = len(data) if hi is None else hi
    runs = data[lo:hi].translate(_B64_TABLE)  # positions in it are relative to lo
    start = runs.find(B64_LONG)
    while start >= 0:
        end = runs.find(b" ", start + 16)
        end = len(runs) if end < 0 else end
        if end - start <= 1029:
            for at in ((0, 1, 5) if lo + start and data[lo + start - 1] == 92 else (0,)):
                at += lo + start
                if lo + end - at >= 16 and data[at] in _B64_FIRST and B64_PRINTABLE.issuperset(
                        binascii.a2b_base64(data[at:at + 16])):
                    return True
        start = runs.find(B64_LONG, end)
    return False
