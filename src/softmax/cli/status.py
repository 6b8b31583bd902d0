"""Exit statuses and the errors that map to them, for every `softmax` command.

The program raises; only `softmax.cli.core.main` turns an error into a
message on stderr and an exit status. Keeping the two apart lets every
subcommand say *what* went wrong without caring *how* it is reported.
"""

from __future__ import annotations

import enum

__all__ = [
    "CLIError",
    "ExitStatus",
    "InputError",
    "MissingDependency",
    "Terminated",
    "UsageError",
    "clip",
]


class ExitStatus(enum.IntEnum):
    """What the `softmax` command returns to the shell."""

    SUCCESS = 0
    #: Anything that is neither the user's command line nor their input: an
    #: output that cannot be written, a missing optional package, a bug.
    ERROR = 1
    #: A bad command line, or input that cannot be read or is malformed.
    USAGE = 2
    #: Ctrl-C (SIGINT), as shells report it: 128 + 2.
    INTERRUPTED = 130
    #: SIGTERM, as shells report it: 128 + 15.
    TERMINATED = 143


class CLIError(Exception):
    """An error the command reports as one line, without a traceback."""

    status = ExitStatus.ERROR
    #: Point the user at ``--help`` after the message.
    hint = False

    def __init__(self, message: str, *, prog: str | None = None):
        super().__init__(message)
        self.prog = prog
        self.usage: str | None = None


class UsageError(CLIError):
    """The command line is wrong: an unknown option, a bad value, a bad score."""

    status = ExitStatus.USAGE
    hint = True

    def __init__(self, message: str, *, usage: str | None = None, prog: str | None = None):
        super().__init__(message, prog=prog)
        self.usage = usage


class InputError(CLIError):
    """An input file or stream cannot be read or does not hold what it should."""

    status = ExitStatus.USAGE


class MissingDependency(CLIError):
    """An optional package is needed and not installed."""

    status = ExitStatus.ERROR


class Terminated(BaseException):
    """SIGTERM arrived: raised by the command's handler so cleanup runs.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception``
    on the way up swallows it.
    """


def clip(text: str, limit: int = 60, *, quote: bool = True) -> str:
    """`text` as ``repr`` for an error message, cut to about `limit` characters.

    A bad token can be megabytes long (a binary file on stdin); echoing it
    whole would bury the message. The length of what was cut is kept.

    Examples
    --------
    >>> clip("abc")
    "'abc'"
    >>> clip("x" * 1000, 10)
    "'xxxxxxxxxx'... (1000 characters)"
    >>> clip("a, b", quote=False)
    'a, b'
    """
    show = repr if quote else str
    if len(text) <= limit:
        return show(text)
    return f"{show(text[:limit])}... ({len(text)} characters)"
