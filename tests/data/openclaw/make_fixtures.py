#!/usr/bin/env python3
"""Regenerate the OpenClaw fixtures in this folder (deterministic; run from anywhere).

The transcripts follow the OpenClaw session format (pi transcript v3) plus the variants seen in
real files: tool errors and retries, compaction, model and thinking-level changes, custom rows
(model-snapshot, openclaw:prompt-error, cache-ttl, bootstrap-context), custom_message rows,
unknown row types, every assistant stopReason, extra fields, short usage, provenance, images,
epoch-ms and ISO timestamps, system-event lines (incl. Telegram reactions), Telegram metadata
prefixes and metadata blocks; and broken input: truncated and non-JSON lines, non-object rows,
rows without type or message, dangling parentIds, files without parentId, without header, with
the header not first, with a second header, archived names, names with colons, a lock file.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOME = HERE / "home"
S1 = "5f0c2d1e-6b7a-4c3d-9e8f-0a1b2c3d4e5f"
S2 = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"
S3 = "9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f"


def dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def msg(rid, parent, ts, message, **extra):
    row = {"type": "message", "id": rid, "parentId": parent, "timestamp": ts, "message": message}
    row.update(extra)
    return dumps(row)


def usage(i, o, cr=0, cost=0.001):
    return {"input": i, "output": o, "cacheRead": cr, "cacheWrite": 0, "totalTokens": i + o + cr,
            "cost": {"input": cost / 2, "output": cost / 2, "cacheRead": 0, "cacheWrite": 0, "total": cost}}


def asst(content, stop, u=None, **extra):
    m = {"role": "assistant", "content": content, "api": "anthropic-messages", "provider": "anthropic",
         "model": "claude-opus-4-5", "usage": u or usage(100, 20), "stopReason": stop, "timestamp": 1772000000000}
    m.update(extra)
    return m


def tool_result(cid, name, text, err=False, **extra):
    m = {"role": "toolResult", "toolCallId": cid, "toolName": name, "content": [{"type": "text", "text": text}],
         "details": {"status": "failed" if err else "completed", "exitCode": 1 if err else 0, "durationMs": 120},
         "isError": err, "timestamp": 1772000001000}
    m.update(extra)
    return m


def user(text, **extra):
    m = {"role": "user", "content": [{"type": "text", "text": text}], "timestamp": 1772000000500}
    m.update(extra)
    return m


def session_main() -> list[str]:
    """The rich live session: every row type and variant, plus broken lines."""
    t = "2026-03-01T10:00:{:02d}.000Z".format
    meta = ('Conversation info (untrusted metadata):\n```json\n{"chat_id": "telegram:4242", "message_id": 77}\n```\n'
            'Sender (untrusted metadata):\n```json\n{"label": "Ada (@ada)", "id": "4242"}\n```\n')
    img = {"type": "image", "data": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
           "mimeType": "image/png"}
    return [
        dumps({"type": "session", "version": 3, "id": S1, "timestamp": t(0), "cwd": "/home/u/proj"}),
        dumps({"type": "model_change", "id": "a0000001", "parentId": None, "timestamp": t(1),
               "provider": "anthropic", "modelId": "claude-opus-4-5"}),
        dumps({"type": "thinking_level_change", "id": "a0000002", "parentId": "a0000001", "timestamp": t(2),
               "thinkingLevel": "low"}),
        dumps({"type": "custom", "id": "a0000003", "parentId": "a0000002", "timestamp": t(3),
               "customType": "model-snapshot", "data": {"timestamp": 1772000003000, "provider": "anthropic",
                                                        "modelApi": "anthropic-messages", "modelId": "claude-opus-4-5"}}),
        dumps({"type": "custom", "id": "a0000004", "parentId": "a0000003", "timestamp": t(4),
               "customType": "bootstrap-context", "data": {"files": ["AGENTS.md", "SOUL.md"], "chars": 5120}}),
        msg("a0000005", "a0000004", t(5), user("[Telegram Ada (@ada) id:4242 +2m 2026-03-01 10:00 UTC] please "
                                               "check the deploy logs\n[message_id: 77]")),
        msg("a0000006", "a0000005", t(6), asst([{"type": "thinking", "thinking": "Look at the log file first.",
                                                 "thinkingSignature": "opaque"},
                                                {"type": "toolCall", "id": "toolu_01", "name": "read",
                                                 "arguments": {"path": "/var/log/deploy.log"}}], "toolUse")),
        msg("a0000007", "a0000006", t(7), tool_result("toolu_01", "read", "ENOENT: no such file or directory, "
                                                      "open '/var/log/deploy.log'", err=True)),
        msg("a0000008", "a0000007", t(8), asst([{"type": "toolCall", "id": "toolu_02", "name": "read",
                                                 "arguments": "{\"path\": \"/home/u/proj/deploy.log\"}"}], "toolUse",
                                               responseId="resp_123", idempotencyKey="k-1")),
        msg("a0000009", "a0000008", t(9), tool_result("toolu_02", "read", "deploy ok at 09:58")),
        msg("a0000010", "a0000009", t(10), asst([{"type": "text", "text": "The deploy succeeded at 09:58."}], "stop")),
        '{"type":"message","id":"a0000011","parentId":"a0000010","timestamp":"2026-03-01T10:00:11.000Z","mess',
        "this line is not JSON at all",
        "[1, 2, 3]",
        dumps({"id": "a0000012", "parentId": "a0000010", "timestamp": t(12), "note": "row without a type"}),
        dumps({"type": "message", "id": "a0000013", "parentId": "a0000010", "timestamp": t(13)}),
        # parent a0000011 was lost to the truncated line above: lineage is repaired to the previous event
        msg("a0000014", "a0000011", t(14), user(meta + "and the cron status?", provenance={"source": "telegram",
                                                                                            "trusted": False})),
        msg("a0000015", "a0000014", t(15), asst([{"type": "toolCall", "id": "toolu_03", "name": "exec",
                                                  "arguments": {"command": "systemctl status cron", "timeout": 5}}],
                                                "toolUse", u={"input": 50, "output": 5, "totalTokens": 55})),
        msg("a0000016", "a0000015", t(16), tool_result("toolu_03", "exec", "Command timed out after 5s", err=True)),
        msg("a0000017", "a0000016", t(17), asst([], "error", errorMessage="429 Rate limit reached for requests")),
        dumps({"type": "model_change", "id": "a0000018", "parentId": "a0000017", "timestamp": t(18),
               "provider": "openai", "modelId": "gpt-5"}),
        dumps({"type": "custom", "id": "a0000019", "parentId": "a0000018", "timestamp": t(19),
               "customType": "openclaw:prompt-error", "data": {"error": "prompt too large", "tokens": 210000}}),
        dumps({"type": "compaction", "id": "a0000020", "parentId": "a0000019", "timestamp": t(20),
               "summary": "User asked about deploy logs and cron; deploy ok; cron check timed out.",
               "firstKeptEntryId": "a0000014", "tokensBefore": 182000,
               "details": {"readFiles": ["/home/u/proj/deploy.log"], "modifiedFiles": []}, "fromHook": False}),
        dumps({"type": "custom", "id": "a0000021", "parentId": "a0000020", "timestamp": t(21),
               "customType": "cache-ttl", "data": {"ttlMs": 300000}}),
        dumps({"type": "custom_message", "id": "a0000022", "parentId": "a0000021", "timestamp": t(22),
               "customType": "reminder", "content": "Remember to post the summary.", "display": True,
               "details": {"origin": "plugin"}}),
        dumps({"type": "branch_summary", "id": "a0000023", "parentId": "a0000022", "timestamp": t(23),
               "fromId": "a0000010", "summary": "an abandoned branch"}),
        msg("a0000024", "a0000023", t(24),
            {"role": "user", "content": [{"type": "text", "text": "System: [2026-03-01 18:00:24 GMT+8] Exec "
                                          "completed (abc123, code 0) :: backup done\nSystem: [2026-03-01 18:00:24 "
                                          "GMT+8] Telegram reaction added: 👍 by Ada (@ada) on msg 901"}],
             "timestamp": 1772359224000}),
        msg("a0000025", "a0000024", t(25), asst([{"type": "text", "text": "Noted."}], "aborted",
                                                openclawAbort={"reason": "user"})),
        msg("a0000026", "a0000025", t(26), {"role": "user", "content": [{"type": "text", "text": "what is in this "
                                                                         "screenshot?"}, img],
                                            "timestamp": 1772000026000}),
        msg("a0000027", "a0000026", t(27), asst([{"type": "toolCall", "id": "call_9|fc_1", "name": "browser",
                                                  "arguments": {"action": "snapshot"}}], "toolUse")),
        msg("a0000028", "a0000027", t(28), {"role": "toolResult", "toolCallId": "call_9|fc_1", "toolName": "browser",
                                            "content": [{"type": "text", "text": "page captured"}, img],
                                            "isError": False, "timestamp": 1772000028000}),
        msg("a0000029", "a0000028", t(29), asst([{"type": "text", "text": "A dashboard with green checks, and "
                                                  "then the answer was cut"}], "length")),
        msg("a0000030", "a0000029", t(30), {"role": "assistant", "content": [{"type": "text", "text": "(injected "
                                            "reminder)"}], "stopReason": "injected", "timestamp": 1772000030000}),
        msg("a0000031", "a0000030", t(31), tool_result("toolu_99", "exec", "result for a call never made")),
        msg("a0000032", "a0000031", t(32), {"role": "bashExecution", "command": "ls", "output": "a b",
                                            "timestamp": 1772000032000}),
    ]


def session_no_parent_ids() -> list[str]:
    """An older archived session: rows without parentId, epoch-ms only timestamps, torn tail."""
    rows = [dumps({"type": "session", "version": 2, "id": S2, "timestamp": "2026-02-10T08:00:00Z"})]
    rows.append(dumps({"type": "message", "id": "b1", "message": {"role": "user", "content": "hello there",
                                                                  "timestamp": 1770710401000}}))
    rows.append(dumps({"type": "message", "id": "b2", "message": {"role": "assistant", "content": [
        {"type": "text", "text": "Hi! How can I help?"}], "usage": {"input": 10, "output": 6, "totalTokens": 16},
        "stopReason": "stop", "model": "gpt-5-mini", "provider": "openai", "timestamp": 1770710402000}}))
    rows.append('{"type":"message","id":"b3","message":{"role":"user","content":"and the')  # no newline after
    return rows


def session_no_header() -> list[str]:
    """A deleted session whose header row is missing: the id comes from the file name."""
    t = "2026-02-20T12:00:{:02d}.000Z".format
    return [
        msg("c1", None, t(1), user("Read HEARTBEAT.md if it exists (workspace context). Follow it strictly. "
                                   "If nothing needs attention, reply HEARTBEAT_OK.")),
        msg("c2", "c1", t(2), asst([{"type": "text", "text": "HEARTBEAT_OK"}], "stop")),
    ]


def session_header_late() -> list[str]:
    """Header not first, then a second header; name with colons; a cron system event."""
    t = "2026-02-21T06:00:{:02d}.000Z".format
    return [
        msg("d1", None, t(1), user("System: [2026-02-21 06:00:01 UTC] Cron: nightly report")),
        dumps({"type": "session", "version": 3, "id": "agent:main:cron:nightly", "timestamp": t(2), "cwd": "/srv"}),
        msg("d2", "d1", t(3), asst([{"type": "text", "text": "Report sent."}], "stop")),
        dumps({"type": "session", "version": 3, "id": "agent:main:cron:nightly", "timestamp": t(4), "cwd": "/srv"}),
        msg("d3", None, t(5), user("System: [2026-02-21 06:00:05 UTC] Cron: nightly report")),
    ]


def legacy_session() -> list[str]:
    """Pre-v3 rows: messages without a ``type`` wrapper."""
    return [
        dumps({"type": "session", "version": 1, "id": "legacy-1", "timestamp": "2025-12-01T00:00:00.000Z"}),
        dumps({"role": "user", "content": "old format question", "timestamp": 1764547201000}),
        dumps({"role": "assistant", "content": "old format answer", "stopReason": "stop", "timestamp": 1764547202000}),
    ]


def write(path: Path, rows: list[str], final_newline: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(rows) + ("\n" if final_newline else "")
    path.write_text(text, encoding="utf-8")


def main() -> None:
    main_dir = HOME / ".openclaw" / "agents" / "main" / "sessions"
    write(main_dir / f"{S1}.jsonl", session_main())
    write(main_dir / f"{S1}.jsonl.bak", session_main()[:8])  # an older, shorter copy
    write(main_dir / f"{S2}.jsonl.reset.2026-02-11T09-00-00.000Z", session_no_parent_ids(), final_newline=False)
    write(main_dir / f"{S3}.jsonl.deleted.2026-02-22T00-00-00.000Z", session_no_header())
    write(main_dir / "agent:main:cron:nightly.jsonl", session_header_late())
    (main_dir / f"{S1}.jsonl.lock").write_text("pid 123\n")
    index = {"agent:main:telegram:direct:4242": {"sessionId": S1, "updatedAt": 1772000032000,
                                                 "chatType": "direct", "channel": "telegram"},
             "agent:main:main": {"sessionId": S3, "updatedAt": 1771588800000}}
    (main_dir / "sessions.json").write_text(json.dumps(index, indent=2) + "\n")
    write(HOME / ".clawdbot" / "agents" / "ops" / "sessions" / "legacy-1.jsonl", legacy_session())


if __name__ == "__main__":
    main()
