"""Phone numbers in digit runs: ``phone_ok``, and before it ``may_be_national``, a cheap test that a digit run written without ``+`` cannot be a valid phone number of the configured
regions, run before ``phonenumbers`` parses and validates it (~0.2 ms a candidate: a tool output holding
thousands of ids, epoch times or sizes spent seconds there, at capture under the recorder's lock).

It only says no where ``phonenumbers`` would: a number without ``+`` is parsed in a configured region,
so its national significant number is the digits as written, or them less the region's national
(trunk) prefix or country code, or it follows an international prefix (``00``, ``011``: left to
``phonenumbers``); ``is_valid_number`` then needs that number to match the general pattern of a region
of that country code (the US's and the 24 other NANP regions' for ``1``). A region whose trunk prefix
is parsed by a pattern of its own (Brazil's carrier codes) is never ruled out here.
"""

from __future__ import annotations

import re
from functools import lru_cache

from tracebridge.curate.triggers import NOT_PHONE

_GROUP = re.compile(r"\d+")
_FIRST_GROUP = re.compile(r"\D*(\d+)")


@lru_cache(maxsize=16)
def _shapes(regions: tuple[str, ...]) -> tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] | None:
    """Per configured region: the prefixes that may come off the digits and the union of the general
    patterns of its country code's regions; None when a region's prefix parsing is not a plain prefix."""
    import phonenumbers as pn

    out = []
    for region in regions:
        meta = pn.PhoneMetadata.metadata_for_region(region)
        if meta is None:
            return None
        prefix, parsing = meta.national_prefix, meta.national_prefix_for_parsing
        if parsing not in (None, prefix) or meta.national_prefix_transform_rule:
            return None
        patterns = [m.general_desc.national_number_pattern
                    for r in pn.region_codes_for_country_code(meta.country_code)
                    if (m := pn.PhoneMetadata.metadata_for_region(r)) is not None and m.general_desc]
        if not patterns:
            return None
        strip = tuple(p for p in (prefix, str(meta.country_code)) if p)
        out.append((strip, re.compile("|".join(f"(?:{p})" for p in patterns))))
    return tuple(out)


def may_be_national(raw: str, regions: tuple[str, ...]) -> bool:
    """Whether ``raw`` (the digits of a candidate written without ``+``) may parse as a valid number of
    one of ``regions``; False only where ``phonenumbers`` would find none."""
    if raw.startswith(("00", "011")):
        return True
    shapes = _shapes(regions)
    if shapes is None:
        return True
    for strip, pattern in shapes:
        if pattern.fullmatch(raw):
            return True
        for p in strip:
            if raw.startswith(p) and pattern.fullmatch(raw[len(p):]):
                return True
    return False


def phone_ok(text: str, digits: int, regions: tuple[str, ...]) -> bool:
    """A valid number in one of ``regions`` (``phonenumbers``), not a date or decimal.

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
    if not plus and not may_be_national(raw, regions):  # ids, epoch times: no parse
        return False
    for region in regions:
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
        if raw.endswith(full) and (raw[:-len(full)] in ("00", "011") or (raw == full and _nanp_trunk(text, full))):
            return True  # international prefix, or NANP's 1 (a bare 44 or 49 in front is too often an id)
    return False


def _nanp_trunk(text: str, full: str) -> bool:
    """Whether ``text``, the digits ``full`` (country code and number), is a NANP number written as
    NANP writes it: ``1`` and 3-3-4 groups (``1 415 555 2671``, ``1-(415) 555-2671``) or one run.
    Other groups are a date, OID or path by another number (``13.01.2027 - 1.3.6``, ``:120
    23/08/2026``), and ``13/10/2022`` is ``1`` and a 7-digit local number."""
    groups = _GROUP.findall(text)
    return len(full) == 11 and full[0] == "1" and (len(groups) == 1 or groups == ["1", full[1:4], full[4:7], full[7:]])
