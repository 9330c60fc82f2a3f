"""Errors raised by the scoring core."""


class ScoringError(Exception):
    """Base class for errors of the scoring core."""


class ConfigError(ScoringError):
    """A config file or mapping is invalid; the message is one line naming the field."""


class StateDecodeError(ScoringError):
    """Bytes that are not a serialised customer state of a known version."""


class CalibrationError(ScoringError):
    """A calibration artefact is invalid or does not fit the config; the message is one line naming the field."""
