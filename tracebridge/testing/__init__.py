"""Test and chaos helpers that ship with the package: malformed-input generators used by
the fuzz tests and the ``scripts/chaos_*.py`` scripts."""
