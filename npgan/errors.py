"""Exception types raised by npgan.

Every error that npgan raises on purpose derives from :class:`NpganError`.
Errors about bad values also derive from :class:`ValueError`, so callers that
already catch ``ValueError`` keep working.
"""


class NpganError(Exception):
    """Base class of every error npgan raises on purpose."""


class DataError(NpganError, ValueError):
    """A data file or data source is missing, malformed or fails its checksum."""


class DownloadError(DataError):
    """No mirror delivered a file whose checksum matched."""


class ConfigError(NpganError, ValueError):
    """A hyper-parameter is out of range or inconsistent."""


class CheckpointError(NpganError, ValueError):
    """A checkpoint is unreadable or does not match the model it is loaded into."""


class NonFiniteError(NpganError, FloatingPointError):
    """Training produced a NaN or an infinity in a loss, gradient or parameter."""
