"""Errors that describe a user's mistake: scripts print them without a traceback."""


class UserError(Exception):
    """Bad input from the user (config, files, arguments). The message says what to do."""


class ConfigError(UserError):
    """A config file that cannot be used as written."""


class DataError(UserError):
    """Image or mask files that cannot be used as found."""


def first_few(items, limit=5):
    """'a, b, c and 7 more' for error messages that list files."""
    items = [str(i) for i in items]
    shown = ", ".join(items[:limit])
    rest = len(items) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown
