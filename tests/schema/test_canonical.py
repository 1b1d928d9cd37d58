"""The schema's timestamps: ``utc_now`` (formatted once a second, the rest once a millisecond) reads as
``format_ts`` of the same clock, and stays in order across a second's boundary."""

from __future__ import annotations

import datetime as dt
import re
import time

from tracebridge.schema.canonical import format_ts, utc_now

TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def test_utc_now_is_format_ts_of_the_utc_clock():
    for _ in range(3):
        before = format_ts(dt.datetime.now(dt.UTC))
        now = utc_now()
        after = format_ts(dt.datetime.now(dt.UTC))
        assert TS.fullmatch(now), now
        assert before <= now <= after  # the format sorts as time does
        time.sleep(0.35)  # the next call may be in another second: its prefix is formatted again


def test_utc_now_never_goes_back_over_a_second_boundary():
    stamps = []
    end = time.time() + 1.2  # spans at least one whole-second change
    while time.time() < end:
        stamps.append(utc_now())
    assert stamps == sorted(stamps) and len({s[:19] for s in stamps}) >= 2
