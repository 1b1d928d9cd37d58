"""Checksums that tell a real payment card or IBAN from a number that only looks like one: the
Luhn check, card-network prefixes and lengths, IBAN country lengths and mod 97. Pure."""

from __future__ import annotations

# IBAN lengths by country (mod-97 is the main check; the length cuts chance matches further).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21, "CY": 28, "CZ": 24,
    "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}


def luhn_ok(digits: str) -> bool:
    """Luhn checksum of a digit string."""
    total, alt = 0, False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if alt:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        alt = not alt
    return total % 10 == 0


def _card_lengths(digits: str) -> range | tuple[int, ...]:
    """Lengths a card network with this prefix issues (none for a prefix no network uses)."""
    if digits[0] == "4":
        return (13, 16, 19)  # Visa
    if digits[:2] in ("34", "37"):
        return (15,)  # Amex
    if "51" <= digits[:2] <= "55" or 2221 <= int(digits[:4]) <= 2720:
        return (16,)  # Mastercard
    if digits[:2] in ("30", "36", "38", "39"):
        return (14, 16)  # Diners
    if digits[:2] == "35":
        return range(16, 20)  # JCB
    return range(13, 20) if digits[0] in "56" else ()  # Discover, UnionPay, Maestro


def card_ok(raw: str) -> bool:
    """A plausible payment card number: a card-network prefix and length, Luhn-valid."""
    digits = raw.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1 or len(digits) not in _card_lengths(digits):
        return False
    return luhn_ok(digits)


def iban_ok(raw: str) -> bool:
    """An IBAN (grouped by spaces or dashes) with a known country length and a valid mod-97 check."""
    s = raw.replace(" ", "").replace("-", "")
    if IBAN_LENGTHS.get(s[:2]) != len(s):
        return False
    moved = s[4:] + s[:4]
    try:
        num = int("".join(str(int(c, 36)) for c in moved))
    except ValueError:
        return False
    return num % 97 == 1
