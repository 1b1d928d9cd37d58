"""Curation: redaction and PII scanning (two passes), quality and lineage checks with quarantine,\ndeduplication by (goal_hash, key_steps_hash, final_outcome), and the goal-family split.\n"""
