"""Shared library of the model zoo. Nothing here imports from ``models``."""
