"""Exit codes and the errors that map to them, for the `softmax` command.

The program raises; only ``cli.main`` turns an error into a message on
stderr and an exit code. Keeping the two apart lets every subcommand say
*what* went wrong without caring *how* it is reported.
"""

from __future__ import annotations

import enum

__all__ = ["CLIError", "ExitStatus", "InputError", "MissingDependency", "UsageError"]


class ExitStatus(enum.IntEnum):
    """What the `softmax` command returns to the shell."""

    SUCCESS = 0
    #: Anything that is neither the user's command line nor their input:
    #: an output that cannot be written, a missing optional package.
    ERROR = 1
    #: A bad command line, or input that cannot be read or is malformed.
    USAGE = 2
    #: Ctrl-C, as shells report SIGINT (128 + 2).
    INTERRUPTED = 130


class CLIError(Exception):
    """An error the command reports as one line, without a traceback."""

    status = ExitStatus.ERROR
    #: Point the user at ``--help`` after the message.
    hint = False


class UsageError(CLIError):
    """The command line is wrong: an unknown option, a bad value, a bad score."""

    status = ExitStatus.USAGE
    hint = True

    def __init__(self, message: str, *, usage: str | None = None, prog: str | None = None):
        super().__init__(message)
        self.usage = usage
        self.prog = prog


class InputError(CLIError):
    """An input file or stream cannot be read or does not hold what it should."""

    status = ExitStatus.USAGE


class MissingDependency(CLIError):
    """An optional package (an extra) is needed and not installed."""

    status = ExitStatus.ERROR
