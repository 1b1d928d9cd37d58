"""Digits of other scripts, for the triggers (``tracebridge.curate.triggers``): a text whose decoded
form holds one may hold a number the detectors' ``\\d`` patterns find, though none of its bytes is 0-9."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

# Digits of other scripts: what ``\d`` matches beyond 0-9 (650 characters, all below U+20000),
# found on UTF-8 bytes: their lead bytes first (8 values; CJK, punctuation and emoji text has none
# or few), then their exact encodings (``_other_digit_bytes``).
OTHER_DIGITS_BELOW = 0x20000


@functools.cache
def other_digit_encodings() -> tuple[bytes, ...]:
    """The UTF-8 encodings of those digits (``tracebridge.curate.prescan`` looks for them all at once)."""
    chars = "".join(map(chr, (*range(0x80, 0xD800), *range(0xE000, OTHER_DIGITS_BELOW))))
    return tuple(c.encode() for c in re.findall(r"\d", chars))  # one C-level pass (a match a character: 40 ms)


@functools.cache
def _other_digit_bytes() -> tuple[bytes, Callable[[bytes], Any]]:
    """(bytes that are no lead byte of such a digit, a search for their UTF-8 encodings)."""
    tails: dict[bytes, list[int]] = {}
    for enc in other_digit_encodings():
        tails.setdefault(enc[:-1], []).append(enc[-1])
    leads = {k[0] for k in tails}
    alts = [re.escape(k) + b"[" + b"".join(re.escape(bytes([x])) for x in v) + b"]" for k, v in sorted(tails.items())]
    return bytes(i for i in range(256) if i not in leads), re.compile(b"|".join(alts)).search


def other_digit(data: bytes) -> bool:
    """Whether the UTF-8 ``data`` holds a digit of another script (its decoded text would)."""
    not_lead, search = _other_digit_bytes()
    return bool(data.translate(None, not_lead)) and search(data) is not None
