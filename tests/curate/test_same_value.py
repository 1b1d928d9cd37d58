"""One value written two ways got two placeholders in one run (``DE89 3704 0044 0532 0130 00`` typed by the user
and ``DE89370400440532013000`` printed by a tool: ``<IBAN_1>`` and ``<IBAN_2>``), so a model trained on the rows
saw two accounts. ``tracebridge.curate.same_value`` says, per kind, what counts as the same value."""

from __future__ import annotations

import pytest

from tracebridge.curate.config import RedactionConfig
from tracebridge.curate.redact import Redactor
from tracebridge.curate.same_value import same_value

SAME = [  # (kind, ways of writing one value)
    ("IBAN", ["de89 3704 0044 0532 0130 00", "DE89370400440532013000", "DE89 3704 0044 0532 0130 00",
              "DE89-3704-0044-0532-0130-00"]),
    ("CARD", ["4111-1111-1111-1111", "4111111111111111", "4111 1111 1111 1111"]),
    ("EMAIL", ["Jane.Doe@Example.com", "jane.doe@example.com", "JANE.DOE@EXAMPLE.COM", "jane dot doe at example dot com",
               "jane.doe[at]example[.]com", "jane.doe%40example.com"]),
    ("PHONE", ["+1 (415) 555-2671", "415-555-2671", "(415) 555-2671", "+14155552671", "1 415 555 2671"]),
    ("SSN", ["078-05-1120", "SSN: 078051120"]),
    ("IPV6", ["2001:db8::1", "2001:0DB8:0000:0000:0000:0000:0000:0001"]),
]


@pytest.mark.parametrize(("kind", "ways"), SAME)
def test_one_value_written_several_ways_gets_one_placeholder_in_a_run(kind: str, ways: list[str]) -> None:
    red = Redactor(key=b"k" * 32)
    outs = [red.redact_text(f"note: {w} (see above)", "run") for w in ways]
    assert set(outs) == {f"note: <{kind}_1> (see above)"} | ({f"note: SSN: <{kind}_1> (see above)"} if kind == "SSN"
                                                             else set()), outs
    assert red.findings("run") == {kind: len(ways)}


def test_different_values_and_secrets_in_other_case_stay_apart() -> None:
    red = Redactor(key=b"k" * 32)
    texts = ["IBAN GB82 WEST 1234 5698 7654 32", "IBAN DE89370400440532013000", "mail jane@example.com",
             "mail john@example.com", "call 415-555-2671", "call 415-555-2672",
             "password=Hunter22Xy", "password=hUNTER22xY"]  # a secret's case is part of it
    assert [red.redact_text(t, "run").split()[-1].split("=")[-1] for t in texts] == [
        "<IBAN_1>", "<IBAN_2>", "<EMAIL_1>", "<EMAIL_2>", "<PHONE_1>", "<PHONE_2>", "<SECRET_1>", "<SECRET_2>"]


def test_phone_numbers_by_region_and_terms_by_case() -> None:
    assert same_value("PHONE", "020 7946 0958", ["US", "GB"]) == same_value("PHONE", "+44 20 7946 0958", ["US", "GB"])
    assert same_value("PHONE", "020 7946 0958", ["US", "GB"]) == "+442079460958"
    red = Redactor(RedactionConfig(terms={"CLIENT": ["Acme Corp"]}), key=b"k" * 32)
    assert red.redact_text("Acme Corp and ACME CORP and acme corp", "run") == "<CLIENT_1> and <CLIENT_1> and <CLIENT_1>"
