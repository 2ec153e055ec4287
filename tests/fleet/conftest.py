"""Fixtures for the fleet tests: the real update server (from the node tests' helpers)."""

from tests.node.test_engine_support import update_server  # noqa: F401  (a fixture)
