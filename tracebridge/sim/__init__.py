"""Benchmark suites: goal families with ground-truth checkers, sandboxed real tools, scripted and\nmodel-backed planner/worker/verifier roles, the orchestrator and the collection matrix.\n"""
