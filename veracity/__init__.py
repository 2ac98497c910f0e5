"""Veracity: resolve police person records from many systems into one trusted view."""

__version__ = "0.1.0"
