"""The one exception family the CLI turns into a one-line error (exit 2)."""


class HsearchError(Exception):
    """Bad input or state the user can fix: the message alone must say what and where."""
