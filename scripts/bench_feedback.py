"""Telegram webhook cost per update: ms per POST into a ledger of 2k, 20k and 60k rows, with the receiver's
ledger cache (``tracebridge.feedback.ledger_cache``) and with a fresh full read of the ledger per update (as
before the cache), both measured in the same run, on copies of the same ledger, with the same updates.

    python scripts/bench_feedback.py --smoke          # seconds: ledgers of 200 and 1000 rows
    python scripts/bench_feedback.py                  # 2000, 20000, 60000 rows
    python scripts/bench_feedback.py --rows 100000 --posts 30 --fresh-posts 2

The ledger is made by harvesting getUpdates-like updates (user reactions in private chats and groups, a tenth
anonymous counts in a channel) under a bench salt, in a temp folder. Each receiver runs on loopback; a POST is
timed from send to reply (the HTTP round trip, the harvest, its fsync). The first POST to the cached receiver
reads the whole ledger (shown as ``first``); the median of the others is the figure. After each size both
ledgers, quarantines and replies must be the same (``identical``), else the script exits 1. The last line is
the ratio fresh/cached at the largest size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracebridge.feedback.config import FeedbackConfig
from tracebridge.feedback.harvest import harvest_updates
from tracebridge.feedback.webhook import SECRET_HEADER, WebhookServer

SECRET = "bench-webhook-secret"
CHANNEL = -1001000000001


def update(uid: int, *, date: int) -> dict[str, Any]:
    """Update ``uid``: a user's 👍/❤/👎 in a private chat or group, or (one in ten) a channel's counts."""
    if uid % 10 == 0:
        return {"update_id": uid, "message_reaction_count": {
            "chat": {"id": CHANNEL, "type": "channel"}, "message_id": uid // 10, "date": date,
            "reactions": [{"type": {"type": "emoji", "emoji": "👍"}, "total_count": 1 + uid % 7}]}}
    chat = 1000 + uid % 500 if uid % 3 else -100200 - uid % 40
    emoji = ("👍", "❤", "👎")[uid % 3]
    return {"update_id": uid, "message_reaction": {
        "chat": {"id": chat, "type": "private" if chat > 0 else "group"}, "message_id": uid // 3,
        "user": {"id": 1000 + uid % 500, "first_name": "U"}, "date": date, "old_reaction": [],
        "new_reaction": [{"type": "emoji", "emoji": emoji}]}}


def files(folder: Path) -> FeedbackConfig:
    folder.mkdir(parents=True, exist_ok=True)
    return FeedbackConfig(ledger=str(folder / "telegram-reactions.jsonl"), mapping=str(folder / "mapping.json"),
                          registry=str(folder / "sent-chunks.jsonl"), harvest_log=str(folder / "harvest-log.jsonl"),
                          quarantine=str(folder / "quarantine.jsonl"), audit_dir=str(folder / "audit"), webhook_port=0)


def post(url: str, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    req = urllib.request.Request(url, data=orjson.dumps(body), method="POST",
                                 headers={"Content-Type": "application/json", SECRET_HEADER: SECRET})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        reply = orjson.loads(r.read())
    return time.perf_counter() - t0, reply


def serve(cfg: FeedbackConfig, cached: bool, ups: list[dict[str, Any]]) -> tuple[list[float], list[dict[str, Any]]]:
    """POST ``ups`` one by one to a receiver on ``cfg``; (seconds per POST, replies)."""
    srv = WebhookServer(cfg, SECRET, cache_ledger=cached)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        got = [post(srv.url, u) for u in ups]
    finally:
        srv.shutdown()
        srv.server_close()
    return [t for t, _ in got], [r for _, r in got]


def content(path: str, drop: tuple[str, ...]) -> list[dict[str, Any]]:
    p = Path(path)
    rows = [orjson.loads(x) for x in p.read_bytes().splitlines()] if p.is_file() else []
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


def bench(tmp: Path, base: FeedbackConfig, n: int, posts: int, fresh_posts: int, date: int) -> tuple[float, float]:
    """Ms per update at ``n`` ledger rows: (cached median, fresh median); prints the size's line."""
    ups = [update(n + 1 + i, date=date) for i in range(posts)]
    ups.insert(posts // 2, ups[0])  # a re-delivery: deduped by both
    out = {}
    for cached, k in ((True, len(ups)), (False, min(len(ups), fresh_posts))):
        cfg = files(tmp / f"{n}-{'cached' if cached else 'fresh'}")
        shutil.copyfile(base.ledger, cfg.ledger)
        times, replies = serve(cfg, cached, ups[:k])
        out[cached] = (cfg, times, replies)
    (_, ctimes, creplies), (fcfg, ftimes, freplies) = out[True], out[False]
    k = len(ftimes)  # the cached receiver's ledger after the same k updates: a second one, posted only those
    check = files(tmp / f"{n}-check")
    shutil.copyfile(base.ledger, check.ledger)
    serve(check, True, ups[:k])
    same = (content(check.ledger, ("harvested_at",)) == content(fcfg.ledger, ("harvested_at",))
            and content(check.quarantine, ("time",)) == content(fcfg.quarantine, ("time",))
            and creplies[:k] == freplies)
    cached_ms, fresh_ms = statistics.median(ctimes[1:]) * 1e3, statistics.median(ftimes) * 1e3
    print(f"{n} rows: cached {cached_ms:.1f} ms/update (max {max(ctimes[1:]) * 1e3:.1f}, {len(ctimes) - 1} updates;"
          f" first {ctimes[0] * 1e3:.0f} ms, a full read), fresh full read "
          f"{fresh_ms:.1f} ms/update ({len(ftimes)} updates), {fresh_ms / cached_ms:.0f}x; "
          f"{'identical' if same else 'DIFFERENT'} ledgers")
    if not same:
        sys.exit(1)
    return cached_ms, fresh_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[2000, 20000, 60000], help="ledger sizes (rows)")
    ap.add_argument("--posts", type=int, default=20, help="updates POSTed to the cached receiver per size")
    ap.add_argument("--fresh-posts", type=int, default=3, help="of those, POSTed to the fresh-read receiver")
    ap.add_argument("--smoke", action="store_true", help="ledgers of 200 and 1000 rows, few posts (the test suite)")
    args = ap.parse_args()
    sizes, posts, fresh = (([200, 1000], 6, 3) if args.smoke else (sorted(args.rows), args.posts, args.fresh_posts))
    os.environ["TRACEBRIDGE_FEEDBACK_SALT"] = "bench-salt-" + os.urandom(8).hex()
    date = int(time.time()) - 86400
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["TRACEBRIDGE_FEEDBACK_SALT_FILE"] = str(root / "no-salt-file")
        base, have = files(root / "base"), 0
        print(f"ledgers: {', '.join(map(str, sizes))} rows; {posts} updates each (+1 re-delivery), "
              f"{fresh} with a fresh read")
        for n in sizes:
            harvest_updates(base, ((f"u:{i}", update(i, date=date)) for i in range(have + 1, n + 1)),
                            "getUpdates", ["bench"])
            have = n
            rows = Path(base.ledger).read_bytes().count(b"\n")
            assert rows == n, (rows, n)
            cached_ms, fresh_ms = bench(root, base, n, posts, fresh, date)
        print(f"ratio fresh/cached at {sizes[-1]} rows: {fresh_ms / cached_ms:.1f}")


if __name__ == "__main__":
    main()
