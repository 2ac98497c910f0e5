"""Errors that carry a message meant for a person: what was wrong, where, and what to do."""


class VeracityError(Exception):
    """A failure the user can act on. The CLI prints it on one line and exits non-zero."""


class ConfigError(VeracityError):
    """A source config (or other declared input) is invalid."""


class LakeError(VeracityError):
    """The lake is missing, unreachable or not in the expected shape."""


class ModelMismatchError(VeracityError):
    """A saved model was trained for a different model declaration than today's."""
