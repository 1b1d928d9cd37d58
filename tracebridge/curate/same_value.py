"""What makes two detected values "the same value", so that they get one placeholder within a run.

Pass 1 (``tracebridge.curate.redact.Redactor``) numbers placeholders by value: the same value gets the
same ``<KIND_n>`` in a run. A value is often written several ways in one conversation (the user types
``de89 3704 0044 0532 0130 00``, a tool prints ``DE89370400440532013000``), and a model trained on the
rows should see one account, not two. ``same_value`` gives the key a value is numbered by, per kind:

- ``IBAN``: upper case, without blanks and dashes (its electronic format);
- ``CARD``, ``SSN``: the digits (``4111-1111-1111-1111`` is ``4111 1111 1111 1111``);
- ``PHONE``: E.164 (``+14155552671``) where the number is valid in one of the configured regions, tried in
  their order as the detector does (``415-555-2671``, ``(415) 555-2671`` and ``+1 415 555 2671`` in ``US``);
  else its digits, with its ``+``;
- ``EMAIL``: lower case (mail providers do not tell ``Jane.Doe@`` from ``jane.doe@``, nor any domain), one
  URL-encoded (``jane%40example.com``) and one written out against scrapers as the address it stands for
  (``jane[at]example[.]com``, ``jane dot doe at example dot com``);
- ``IPV6``: its compressed form, lower case (``2001:0DB8:0:0::1`` is ``2001:db8::1``);
- a configured term (``redaction.terms``, matched in any case): case-folded;
- anything else, credentials above all (``SECRET``, ``AWS_KEY``…), exactly as written: case matters in
  a secret. Pure; no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection

_BLANKS_DASHES = re.compile(r"[\s\-]+")
_IBAN_SEP = re.compile(r"%20|\\+[nrt]|\+")  # what else parts an IBAN's groups (``iban.SEP``)
_NOT_DIGIT = re.compile(r"\D+")
# an e-mail written out (``tracebridge.curate.obfuscated_email``): ``[at]``, ``(dot)``, `` dot ``, `` at ``
_AT = re.compile(r"\s*[\[({<]\s*(?:at|@)\s*[\])}>]\s*|\s+at\s+")
_DOT = re.compile(r"\s*[\[({<]\s*(?:dot|\.)\s*[\])}>]\s*|\s+dot\s+")


def same_value(kind: str, value: str, regions: Collection[str] = ("US",), terms: Collection[str] = ()) -> str:
    """The key ``value``, detected as ``kind``, is numbered by: equal for two ways of writing one value.

    Args:
        kind: the span's type (``IBAN``, ``EMAIL``...).
        value: the detected text.
        regions: ``redaction.phone_regions``, in order.
        terms: the kinds of the configured terms (``redaction.terms``' keys).

    Returns:
        The normalised value (the value itself for a kind without a normal form).
    """
    if kind == "IBAN":
        return _BLANKS_DASHES.sub("", _IBAN_SEP.sub(" ", value)).upper()  # ``de89%203704…``, ``de89+3704…``
    if kind in ("CARD", "SSN"):
        return _NOT_DIGIT.sub("", value)
    if kind == "PHONE":
        return _phone(value, regions)
    if kind == "EMAIL":
        low = value.lower().replace("%40", "@")  # URL-encoded in a query or a mailto: link
        return low if "@" in low else _DOT.sub(".", _AT.sub("@", low))
    if kind == "IPV6":
        try:
            return ipaddress.ip_address(value).compressed
        except ValueError:
            return value.lower()
    if kind in terms:
        return value.casefold()
    return value


def _phone(value: str, regions: Collection[str]) -> str:
    """E.164 of the first region the number is valid in (the last one tried is not checked: the detector
    found it valid in one; with one region, the default, that saves the check, ~10 of ~30 µs), else its
    digits (and ``+``)."""
    import phonenumbers as pn

    last = len(regions) - 1
    for i, region in enumerate(regions):
        try:
            num = pn.parse(value, region)
        except pn.NumberParseException:
            continue
        if i == last or pn.is_valid_number(num):
            return pn.format_number(num, pn.PhoneNumberFormat.E164)
    return ("+" if value.lstrip("(（")[:1] in "+＋" else "") + pn.normalize_digits_only(value)
