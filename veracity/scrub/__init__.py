"""Standardisation and validation of source extracts into canonical person rows.

Submodules are imported where used: the ingest Lambda reads extracts (``readers``)
without the standardisation libraries.
"""
