"""The `softmax` command: the command table, parsing, and the one error handler.

Two forms share one command::

    softmax cat=2.0 dog=1.0 rabbit=0.1 [options]   # scores -> table
    softmax COMMAND ...                            # sweep, apply, calibrate

argparse cannot have optional subcommands next to free positionals, so
`main` looks at the first argument that is not an option: a command name
picks that subcommand's parser, anything else is a score. Every command is
a module with ``HELP``, ``DESCRIPTION``, ``EPILOG``, ``add_arguments(parser)``
and ``run(args, env) -> ExitStatus``; `COMMANDS` maps names to them.

Errors are raised by the program and reported here only (`main`): one line
on stderr, no traceback, and an `ExitStatus`. Anything unexpected is
reported the same way, with status 1 and a request to report it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import textwrap
import threading
from dataclasses import dataclass

from . import apply, calibrate, scores, sweep
from .args import HelpFormatter, protect_negative_numbers
from .status import CLIError, ExitStatus, Terminated, UsageError, clip

__all__ = ["COMMANDS", "Environment", "ExitStatus", "main"]

#: The subcommands, in the order ``--help`` lists them. Without a command
#: name, the scores command (`softmax.cli.scores`) runs.
COMMANDS = {"sweep": sweep, "apply": apply, "calibrate": calibrate}

_EPILOG = """\
examples:
  softmax cat=2.0 dog=1.0 rabbit=0.1        the table: shares, percents, bars
  softmax 2 1 0.1 --sort                    bare numbers are labelled 1..K
  echo 2 1 0.1 | softmax                    scores from a pipe
  softmax -1 -2                             negative scores (also: -- -1 -2)
  softmax a=2 b=1 c=0.1 --temperature 0.5   sharper (T < 1) or flatter (T > 1)
  softmax a=2 b=1 c=0.1 --base 2            2**score: the same as T = 1/ln 2
  softmax a=2 b=1 c=0.1 --hardmax           all the mass on the largest score
  softmax a=2 b=1 c=0.1 --mask b --log      leave b out; log-probabilities
  softmax a=2 b=1 c=0.1 --json              for programs
  softmax cat=2 dog=1 rabbit=0.1 --explain  the computation, step by step

  softmax COMMAND --help                    help and examples for a command

--json: JSON has no inf or NaN; -inf (the log-probability of a masked
label) is written "-inf", inf "inf", and NaN null.

exit status: 0 success, 1 failure, 2 bad command line or unreadable input,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM)
"""


@dataclass
class Environment:
    """The streams a command talks through (injectable, as in httpie's Environment)."""

    stdin: object
    stdout: object
    stderr: object

    @property
    def stdin_isatty(self) -> bool:
        """True when stdin is a terminal: nothing is piped in."""
        isatty = getattr(self.stdin, "isatty", None)
        try:
            return bool(isatty and isatty())
        except (OSError, ValueError):
            return False


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting and takes no option prefixes.

    ``--temp`` for ``--temperature`` would silently change meaning the day
    another option starts with ``--temp``: only whole option names count.
    """

    def __init__(self, *args, **kwargs):
        kwargs["allow_abbrev"] = False
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(message, usage=self.format_usage(), prog=self.prog)


def _command_parsers():
    """The subparsers action and ``{name: parser}`` for the command table."""
    holder = Parser(prog="softmax", add_help=False)
    subparsers = holder.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, module in COMMANDS.items():
        parser = subparsers.add_parser(
            name, help=module.HELP, description=module.DESCRIPTION, epilog=module.EPILOG
        )
        module.add_arguments(parser)
        if name in _ACCURACY_COMMANDS:
            _add_accuracy(parser)
        parser.set_defaults(run=module.run)
    return subparsers, dict(subparsers.choices)


# The commands that compute softmax themselves (calibrate fits with its own exact NLL).
_ACCURACY_COMMANDS = ("apply", "sweep")


def _add_accuracy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accuracy", choices=("high", "fast"), default=None,
        help="high: within 1 ulp (float16/32), 2 ulp (float64); fast: float32 lanes, "
             "within 4 ulp, the same edge rules (default: SOFTMAX_ACCURACY, else high)")


def _scores_parser(subparsers) -> Parser:
    from softmax import __version__

    lines = [
        textwrap.fill(f"  {action.dest:<11} {action.help or ''}", 79, subsequent_indent=" " * 14)
        for action in subparsers._choices_actions
    ]
    description = scores.DESCRIPTION
    if lines:
        description += "\ncommands:\n" + "\n".join(lines) + "\n"
    usage = "%(prog)s [options] SCORE [SCORE ...]"
    usage += f"\n       %(prog)s COMMAND ...   (COMMAND: {', '.join(COMMANDS)})"
    parser = Parser(prog="softmax", usage=usage, description=description, epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    scores.add_arguments(parser)
    _add_accuracy(parser)
    parser.set_defaults(run=scores.run)
    return parser


def _command_index(argv, parser, commands) -> int | None:
    """Position of a subcommand name: the first argument that is no option or option value."""
    takes_value = {
        option
        for action in parser._actions
        if action.option_strings and action.nargs != 0
        for option in action.option_strings
    }
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            return None
        if token.startswith("-"):
            needs_value = "=" not in token and token in takes_value
            i += 2 if needs_value else 1
            continue
        return i if token in commands else None
    return None


def _parse(parser: argparse.ArgumentParser, argv):
    try:
        # Options may come between or after the scores.
        return parser.parse_intermixed_args(argv)
    except TypeError:
        # A subcommand whose positionals argparse cannot intermix.
        return parser.parse_args(argv)


def _run(argv, env: Environment) -> ExitStatus:
    subparsers, commands = _command_parsers()
    scores_parser = _scores_parser(subparsers)
    argv = protect_negative_numbers(argv, set(scores_parser._option_string_actions))
    index = _command_index(argv, scores_parser, commands)
    if index is None:
        parser, rest = scores_parser, argv
    else:
        parser, rest = commands[argv[index]], argv[:index] + argv[index + 1:]
    try:
        args = _parse(parser, rest)
        args.commands = tuple(commands)
        if getattr(args, "accuracy", None) is not None:
            import softmax

            softmax.set_accuracy(args.accuracy)  # this process's default: every call below
        return args.run(args, env)
    except CLIError as exc:
        exc.prog = exc.prog or parser.prog
        if isinstance(exc, UsageError):
            exc.usage = exc.usage or parser.format_usage()
        raise


def _one_line(text: str) -> str:
    """`text` on one line, whatever a label or a file name holds.

    Control characters (line breaks, form feeds, terminal escapes) are
    shown escaped, as repr would show them.
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _report(exc: CLIError, stderr) -> None:
    prog = exc.prog or "softmax"
    if exc.usage:
        stderr.write(exc.usage)
    stderr.write(f"{prog}: error: {_one_line(str(exc))}\n")
    if exc.hint:
        stderr.write(f"Try '{prog} --help' for more information.\n")


def _raise_terminated(signum, frame):
    raise Terminated()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt()


@contextlib.contextmanager
def _signals_raise():
    """While the command runs, SIGINT and SIGTERM raise, so ``finally`` cleanup runs.

    The default SIGTERM action kills the process on the spot, leaving a
    temporary output file behind; as an exception it unwinds through the
    writers, which remove it. Only in the main thread (the only one that
    may set handlers), and not for a signal the parent chose to ignore
    (``nohup``, background jobs). The previous handlers come back after.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {}
    for signum, handler in ((signal.SIGINT, _raise_interrupt),
                            (signal.SIGTERM, _raise_terminated)):
        old = signal.getsignal(signum)
        if old is signal.SIG_IGN or old is None:
            continue
        saved[signum] = old
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in saved.items():
            signal.signal(signum, old)


def main(argv=None, *, stdin=None, stdout=None, stderr=None) -> int:
    """Run the `softmax` command; return its exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments, without the program name. Default: ``sys.argv[1:]``.
    stdin, stdout, stderr : file-like, optional
        Text streams to use instead of the process's own (for tests and
        embedding). Results go to `stdout` only, diagnostics to `stderr`.

    Returns
    -------
    int
        An `ExitStatus`: 0 success, 1 failure, 2 bad command line or input,
        130 interrupted (SIGINT), 143 terminated (SIGTERM). No exception
        escapes, and no traceback is printed: an unexpected error is one
        line on stderr with status 1.

    Notes
    -----
    ``--json`` output is strict JSON: ``-inf`` (a masked label's
    log-probability) is written as the string ``"-inf"``, ``inf`` as
    ``"inf"`` and NaN as ``null``.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> main(["cat=2", "dog=1", "rabbit=0.1", "--json"], stdout=out)
    0
    >>> import json
    >>> [round(p, 4) for p in json.loads(out.getvalue())["probabilities"]]
    [0.659, 0.2424, 0.0986]
    >>> main(["cat=x"], stderr=io.StringIO())
    2
    """
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    if stdout is None:
        stdout = sys.stdout
        # A label the terminal's encoding cannot show is escaped, not fatal.
        with contextlib.suppress(AttributeError, ValueError):
            stdout.reconfigure(errors="backslashreplace")
    env = Environment(sys.stdin if stdin is None else stdin, stdout,
                      sys.stderr if stderr is None else stderr)
    stderr = env.stderr
    try:
        with _signals_raise():
            try:
                # argparse prints help and version to sys.stdout: send them to ours.
                with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                    status = _run(argv, env)
                    stdout.flush()
                return int(status)
            except SystemExit as exc:  # --help, --version
                return int(exc.code or 0)
    except CLIError as exc:
        _report(exc, stderr)
        return int(exc.status)
    except KeyboardInterrupt:
        stderr.write("softmax: interrupted\n")
        return int(ExitStatus.INTERRUPTED)
    except Terminated:
        stderr.write("softmax: terminated\n")
        return int(ExitStatus.TERMINATED)
    except BrokenPipeError:
        # The reader left early (softmax apply big.csv | head): stop quietly,
        # and keep Python from complaining while it flushes stdout at exit.
        if stdout is sys.stdout:
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitStatus.ERROR)
    except MemoryError:
        stderr.write("softmax: error: out of memory\n")
        return int(ExitStatus.ERROR)
    except OSError as exc:
        stderr.write(f"softmax: error: {_one_line(clip(str(exc), 300, quote=False))}\n")
        return int(ExitStatus.ERROR)
    except Exception as exc:  # noqa: BLE001 - the guard: never a traceback
        stderr.write(
            f"softmax: internal error: {type(exc).__name__}: "
            f"{_one_line(clip(str(exc), 300, quote=False))}\n"
            "This is a bug in softmax: please report it, with the command line that caused it.\n"
        )
        return int(ExitStatus.ERROR)
