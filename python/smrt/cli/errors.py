"""The CLI's own error: a bad flag value or argument, reported as one line on stderr."""

from __future__ import annotations


class CliError(Exception):
    """A problem with the command line itself (bad expression, refused file, ...)."""
