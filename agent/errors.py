"""Errors that reach the user as one line, never as a traceback."""


class UserError(Exception):
    """A problem with the user's input (file, config key, parameter).

    The CLI prints ``str(exc)`` on one line on stderr and exits non-zero.
    Messages name *what* is wrong and *why*, e.g.
    ``"greeting.wav: truncated WAV header"``.
    """


class ConfigError(UserError):
    """A configuration key is missing or has a bad value; the message names the key."""
