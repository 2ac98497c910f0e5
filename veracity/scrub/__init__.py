"""Standardisation and validation of source extracts into canonical person rows."""

from veracity.scrub.scrub import ScrubResult, scrub_batch

__all__ = ["ScrubResult", "scrub_batch"]
