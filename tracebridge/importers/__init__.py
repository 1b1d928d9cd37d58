"""Importers that turn other trace formats into schema-v2 runs: OpenClaw session transcripts,\nAgent Lightning spans, and older event formats.\n"""
