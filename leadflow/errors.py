"""Errors the CLI reports as one line."""


class CliError(Exception):
    """A problem with what the user asked for (arguments, files, state)."""
