"""Shared fixtures. Sub-folders add their own conftest for their area."""
