"""Ray-head fixtures for these tests: see tests/ray_fixtures.py."""

from tests.ray_fixtures import BUNDLE, ROOT, STATE, ray_head, smoke_storage  # noqa: F401
