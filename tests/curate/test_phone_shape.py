"""The digit-run fast paths of the redaction detectors change no finding: ``may_be_national`` rules out
only what ``phonenumbers`` would refuse (checked against the full check on real numbers of many regions,
written every way, and on random ids), and ``resolve_overlaps`` keeps what the old all-pairs scan kept."""

from __future__ import annotations

import random

import phonenumbers as pn
import pytest

from tracebridge.curate import phone_shape
from tracebridge.curate.detectors import PRIORITY, Span, resolve_overlaps

REGIONS = [("US",), ("GB",), ("DE",), ("FR",), ("IN",), ("BR",), ("JP",), ("CA",), ("AU",), ("US", "GB", "DE")]
FORMATS = (pn.PhoneNumberFormat.NATIONAL, pn.PhoneNumberFormat.INTERNATIONAL, pn.PhoneNumberFormat.E164)


def _written(rng: random.Random) -> list[str]:
    """Real example numbers of many regions in every format (and as one run of digits, with 00/011 in
    front of the international form), and random ids, epoch times and grouped digits."""
    out = []
    for region in ("US", "CA", "GB", "DE", "FR", "IN", "BR", "JP", "AU", "IT", "ES", "MX", "CN", "RU", "ZA"):
        for kind in (pn.PhoneNumberType.FIXED_LINE, pn.PhoneNumberType.MOBILE, pn.PhoneNumberType.TOLL_FREE):
            num = pn.example_number_for_type(region, kind)
            if num is None:
                continue
            for fmt in FORMATS:
                text = pn.format_number(num, fmt)
                out += [text, pn.normalize_digits_only(text)]
            intl = pn.format_number(num, pn.PhoneNumberFormat.INTERNATIONAL)
            out += ["00" + intl[1:], "011 " + intl[1:], "1 " + intl[1:]]
    for _ in range(3000):
        n = rng.randint(7, 15)
        digits = str(rng.randint(10 ** (n - 1), 10 ** n - 1))
        out += [digits, "0" + digits[1:], "1" + digits[1:], f"{digits[:3]}-{digits[3:6]}-{digits[6:]}",
                f"({digits[:3]}) {digits[3:6]} {digits[6:]}"]
    out += [str(1718293845 + 7 * i) for i in range(200)]  # epoch seconds
    return out


@pytest.mark.parametrize("regions", REGIONS, ids="+".join)
def test_the_prefilter_rules_out_no_number_phonenumbers_accepts(regions: tuple[str, ...],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _written(random.Random(7))
    fast = [phone_shape.phone_ok(t, len(pn.normalize_digits_only(t)), regions) for t in texts]
    monkeypatch.setattr(phone_shape, "may_be_national", lambda raw, regions: True)  # the full check alone
    full = [phone_shape.phone_ok(t, len(pn.normalize_digits_only(t)), regions) for t in texts]
    assert fast == full, [t for t, a, b in zip(texts, fast, full, strict=True) if a != b][:10]
    assert sum(full) > 20  # real numbers were among them


def test_the_prefilter_rules_out_ids_and_epoch_times_for_the_us() -> None:
    for raw in ("1718293845", "123456789", "0123456789", "1234567"):
        assert not phone_shape.may_be_national(raw, ("US",)), raw
    for raw in ("4155552671", "14155552671", "011442079460958"):
        assert phone_shape.may_be_national(raw, ("US",)), raw
    assert phone_shape.may_be_national("02079460958", ("GB",))
    assert phone_shape.may_be_national("1234567", ("BR",))  # a prefix parsed by a pattern: never ruled out


def _all_pairs(spans: list[Span]) -> list[Span]:  # the scan resolve_overlaps did before (quadratic)
    rank = {k: i for i, k in enumerate(PRIORITY)}
    kept: list[Span] = []
    for s in sorted(spans, key=lambda s: (rank.get(s.kind, len(PRIORITY)), -(s.end - s.start), s.start)):
        if all(s.end <= k.start or s.start >= k.end for k in kept):
            kept.append(s)
    return sorted(kept)


def test_resolve_overlaps_keeps_what_the_all_pairs_scan_kept() -> None:
    rng = random.Random(3)
    kinds = [*PRIORITY[:6], "OTHER"]
    for _ in range(400):
        spans = []
        for _ in range(rng.randint(0, 40)):
            a = rng.randint(0, 200)
            spans.append(Span(a, a + rng.randint(1, 30), rng.choice(kinds)))
        assert resolve_overlaps(spans) == _all_pairs(spans), spans
