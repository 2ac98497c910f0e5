"""Synthetic police extracts with ground truth: the only data dev and test ever hold."""

from veracity.synthetic.generate import GenerateSummary, generate

__all__ = ["GenerateSummary", "generate"]
