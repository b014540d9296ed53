"""Errors a user can fix. The CLI prints their message on one line and exits with code 2, writing nothing."""


class RambaEvalError(Exception):
    """Base class: a problem with the user's input or environment, with the fix in the message."""


class BadInputError(RambaEvalError, ValueError):
    """A malformed value: a length string, a depth, an unknown task or model name, a bad config key."""


class CheckpointError(RambaEvalError):
    """A missing, corrupt or mismatched checkpoint."""


class DoesNotFitError(RambaEvalError):
    """A request that cannot fit: a length too small for the template, memory or disk too small."""
