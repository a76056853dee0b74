"""Fixtures for the Graph layer's tests (helpers live in graph_sandbox.py)."""

from graph_sandbox import clock, make_sandbox, serve  # noqa: F401  (fixtures)
