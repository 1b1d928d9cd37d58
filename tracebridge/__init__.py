"""TraceBridge: agent traces (planner, worker, verifier) → curated training views → role models
trained and evaluated on ephemeral Ray GPU clusters → manifest-stamped reports back home.
"""

__version__ = "0.1.0"
