"""Repeatable performance scripts that print figures (not timed tests). Run `python -m benchmarks.chat`."""
