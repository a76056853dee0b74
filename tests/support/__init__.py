"""Helpers shared by the test packages (builders, writers, the fake clock); importable as ``support.*``."""
