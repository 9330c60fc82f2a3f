"""Errors of the customer value model."""

from scoring.errors import ScoringError


class ValueModelError(ScoringError):
    """A fit that cannot be done (too little data, no convergence) or a bad model dict."""
