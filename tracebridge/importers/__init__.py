"""Importers that turn other trace formats into schema-v2 runs: OpenClaw session transcripts
(``importers.openclaw``) and Agent Lightning spans, recorded live by the runtime hook or read from a
store's span dump (``importers.agentlightning``). Runs of another schema version are not converted:
``tracebridge validate`` reports them as drift.
"""
