"""Shared helpers for scdrbench scripts: errors, atomic I/O, run-time measurements."""
