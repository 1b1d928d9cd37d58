"""Credential shapes matched as they are, by a prefix or a place of their own: ``OWN_SECRETS`` (the
shapes the detect-secrets plugins miss), the ``Authorization: Bearer/Basic`` header (``AUTH``,
``basic_auth_ok``) and private key blocks (``PRIVATE_BLOCK``); ``HEXISH``, the hex and UUID values a
plugin's find is not. ``tracebridge.curate.detectors`` runs them; the credentials found by their
context are in ``tracebridge.curate.credentials``. Pure; no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re

from tracebridge.curate.triggers import WORD_CHARS as _W

# ASCII case folding (``(?a)``), as the byte trigger's: Unicode folding would take ``Baſic`` (long s)
# and ``basıc`` (dotless i) for ``basic``, which no client sends and the trigger does not see.
AUTH = re.compile(rf"(?ai)(?<![{_W}])(bearer|basic)\s+([A-Za-z0-9._~+/\-]{{8,}}=*)")
# Credential shapes detect-secrets misses: new-style OpenAI keys, keys of OpenAI-compatible providers
# without OpenAI's ``T3BlbkFJ`` marker (``sk-`` and 20+ letters and digits, a digit among them: never
# ``sk-learn``), Anthropic keys, Slack app-level tokens, Stripe test-mode keys, fine-grained GitHub
# PATs, bare npm tokens (its plugin wants an .npmrc line), Google and Hugging Face keys, Google OAuth access tokens (``ya29.``), Telegram bot tokens, GitLab tokens followed by CJK text and URL
# passwords with RFC 3986 sub-delims (``pa$$w0rd!``) or an empty user (``redis://:pass@cache``).
_SAS_FIELD, _SAS_SIG = r"[A-Za-z]{1,8}=[^&\s\"'<>\\]{0,128}", r"[A-Za-z0-9%+/=]{20,}"
OWN_SECRETS = {
    "OPENAI_KEY": re.compile(rf"(?<![{_W}-])sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{{20,}}"
                             r"|(?=[A-Za-z]*\d)[A-Za-z0-9]{20,}(?![A-Za-z0-9_\-]))"),
    "ANTHROPIC_KEY": re.compile(rf"(?<![{_W}-])sk-ant-(?:api|admin)\d\d-[A-Za-z0-9_\-]{{20,}}"),
    # Slack app-level tokens; Workflow Builder and trigger webhook URLs (the ``services/`` ones are the plugin's)
    "SLACK_TOKEN": re.compile(r"xapp-\d-[A-Za-z0-9]+-\d+-[A-Za-z0-9]{16,}"
                              r"|https://hooks\.slack\.com/(?:workflows|triggers)/T[A-Z0-9]{6,}/[A-Za-z0-9]{6,}/"
                              r"(?:\d{6,}/)?[A-Za-z0-9]{16,}"),
    # a Discord webhook URL's token (``discord.com/api/webhooks/<id>/<token>``: whoever has it posts as the hook)
    "DISCORD_WEBHOOK": re.compile(r"discord(?:app)?\.com/api(?:/v\d{1,2})?/webhooks/\d{15,21}/([A-Za-z0-9_\-]{40,100})"
                                  r"(?![A-Za-z0-9_\-])"),
    # an Azure shared access signature's ``sig`` in a URL or connection string whose query holds its ``sv=``
    # version (``?sv=2021-06-08&…&sig=…``, or the version after it): the signature grants what the URL names
    "AZURE_SAS": re.compile(rf"(?:(?<=[?&;=])sv=\d{{4}}-\d\d-\d\d(?:&{_SAS_FIELD}){{0,16}}&sig="
                            rf"|(?<=[?&])sig=(?={_SAS_SIG}(?:&{_SAS_FIELD}){{0,16}}&sv=\d{{4}}-))({_SAS_SIG})"),
    "STRIPE_KEY": re.compile(r"[rs]k_test_[A-Za-z0-9]{24,}"),
    "GITHUB_TOKEN": re.compile(r"github_pat_[A-Za-z0-9_]{60,255}"),
    "NPM_TOKEN": re.compile(r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])"),
    # Google API keys (Maps, Gemini, Firebase: ``AIza`` and 35 more), Google OAuth client secrets and
    # Hugging Face access tokens (``hf_`` and 34 letters), which no detect-secrets plugin knows
    "GOOGLE_KEY": re.compile(rf"(?<![{_W}-])(?:AIza[A-Za-z0-9_\-]{{35}}|GOCSPX-[A-Za-z0-9_\-]{{28}}|ya29\.[A-Za-z0-9_\-]{{20,}})"
                             r"(?![A-Za-z0-9_\-])"),
    # Telegram bot tokens (the bot's id, ``:``, ``A`` and 34 more), which OpenClaw and bot configs hold; also in
    # the Bot API's URLs (``https://api.telegram.org/bot<token>/sendMessage``)
    "TELEGRAM_TOKEN": re.compile(rf"(?:(?<![{_W}])|(?<=/bot))\d{{5,16}}:A[A-Za-z0-9_\-]{{34}}(?![A-Za-z0-9_\-])"),
    "HF_TOKEN": re.compile(rf"(?<![{_W}-])hf_[A-Za-z]{{34}}(?![A-Za-z0-9_\-])"),
    "GITLAB_TOKEN": re.compile(r"gl(?:pat|dt|ft|soat|rt|ptt|cbt|imt|agent|oas)-[A-Za-z0-9_\-]{20,}"),  # CJK after it
    "URL_PASSWORD": re.compile(r"://[A-Za-z0-9\-._~%!$&'()*+,;=]*:([A-Za-z0-9\-._~%!$&'()*+,;=]+)@(?=[A-Za-z0-9\[])"),
    # an AWS secret key has no prefix: found by its name, unquoted (`aws_secret_access_key = ...` in
    # ~/.aws/credentials, env dumps) or as STS/boto JSON (`"SecretAccessKey": "..."`)
    "AWS_KEY": re.compile(r"(?i)(?:aws_?secret_?(?:access_?)?key|secret_?access_?key)[\"']?\s*[:=]\s*[\"']?"
                          r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"),
}
PRIVATE_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
                           r"(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)")
HEXISH = re.compile(r"^(?:[0-9a-fA-F]{16,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                    r"[0-9a-fA-F]{12})$")


# A Twilio account SID (``AC`` and 32 hex) or API key SID (``SK``), and an auth token or API secret near it (32
# hex, or 32 letters and digits): the pair is a login (``Client("AC…", "…")``, ``TWILIO_*`` env dumps). A
# SID alone names an account; 32 hex alone is a hash: neither is taken without the other.
TWILIO_SID = re.compile(r"(?<![A-Za-z0-9])(?:AC|SK)[0-9a-f]{32}(?![A-Za-z0-9])")
_TWILIO_SECRET = re.compile(r"(?<![A-Za-z0-9])(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]{32}(?![A-Za-z0-9])")
TWILIO_NEAR = 256  # characters between the SID and its secret, either way


def twilio_spans(text: str) -> list[tuple[int, int]]:
    """Each Twilio SID of ``text`` (``TWILIO_SID``) with a secret within ``TWILIO_NEAR`` characters, and
    those secrets (a SID is 34 characters: never one)."""
    sids = [m.span() for m in TWILIO_SID.finditer(text)]
    secrets = [m.span() for m in _TWILIO_SECRET.finditer(text)] if sids else []
    out: set[tuple[int, int]] = set()
    for a, b in sids:
        near = [(c, d) for c, d in secrets if c < b + TWILIO_NEAR and d > a - TWILIO_NEAR]
        if near:
            out |= {(a, b), *near}
    return sorted(out)


def basic_auth_ok(token: str) -> bool:
    """Whether ``token`` (of ``Authorization: Basic``) is base64 of UTF-8 text holding a ``:``."""
    try:
        return ":" in base64.b64decode(token + "=" * (-len(token) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
