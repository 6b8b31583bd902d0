"""The `softmax` command: a thin layer over the library.

Two forms share one command::

    softmax cat=2.0 dog=1.0 rabbit=0.1 [options]   # scores -> table
    softmax COMMAND ...                            # sweep, apply, calibrate

argparse cannot have optional subcommands next to free positionals, so
`main` looks at the first argument that is not an option: a command name
picks that subcommand's parser, anything else is a score. Each subcommand
lives in its own module exposing ``register(subparsers)`` (which sets
``func=run``); a module that is missing only removes its command.

Errors are raised by the program and reported here only: one line on
stderr, no traceback, and an exit code from `ExitStatus`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import textwrap

from ._cli_args import HelpFormatter, protect_negative_numbers
from ._cli_exit import CLIError, ExitStatus, UsageError

__all__ = ["ExitStatus", "main"]

#: Subcommand modules, in the order ``--help`` lists them.
_COMMAND_MODULES = ("_cli_sweep", "_cli_apply", "_cli_calibrate")

_EPILOG = """\
examples:
  softmax cat=2.0 dog=1.0 rabbit=0.1        the table: shares, percents, bars
  softmax 2 1 0.1 --sort                    bare numbers are labelled 1..K
  softmax -1 -2                             negative scores (also: -- -1 -2)
  softmax a=2 b=1 c=0.1 --temperature 0.5   sharper (T < 1) or flatter (T > 1)
  softmax a=2 b=1 c=0.1 --base 2            2**score: the same as T = 1/ln 2
  softmax a=2 b=1 c=0.1 --hardmax           all the mass on the largest score
  softmax a=2 b=1 c=0.1 --mask b --log      leave b out; log-probabilities
  softmax a=2 b=1 c=0.1 --json              for programs
  softmax cat=2 dog=1 rabbit=0.1 --explain  the computation, step by step

  softmax COMMAND --help                    help and examples for a command

exit status: 0 success, 1 failure, 2 bad command line or unreadable input
"""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so `main` reports every error."""

    def error(self, message):
        raise UsageError(message, usage=self.format_usage(), prog=self.prog)


def _load_commands():
    """Build the subcommand parsers from whichever command modules exist.

    Returns ``(subparsers_action, {name: parser}, {name: import error})``.
    """
    holder = _Parser(prog="softmax", formatter_class=HelpFormatter, add_help=False)
    subparsers = holder.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    broken = {}
    for module_name in _COMMAND_MODULES:
        command = module_name.removeprefix("_cli_")
        try:
            module = importlib.import_module(f"{__package__}.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{module_name}":
                broken[command] = exc
            continue
        except ImportError as exc:
            broken[command] = exc
            continue
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return subparsers, dict(subparsers.choices), broken


def _scores_parser(subparsers) -> _Parser:
    from . import __version__
    from ._cli_scores import add_arguments

    names = list(subparsers.choices)
    lines = [
        textwrap.fill(f"  {action.dest:<11} {action.help or ''}", 79, subsequent_indent=" " * 14)
        for action in subparsers._choices_actions
    ]
    description = (
        "Turn scores (logits) into probabilities with softmax: every share lies\n"
        "between 0 and 1 and the shares add up to 1.\n\n"
        "    softmax(z)_i = e^(z_i) / sum_j e^(z_j)\n"
    )
    if lines:
        description += "\ncommands:\n" + "\n".join(lines) + "\n"
    usage = "%(prog)s [options] SCORE [SCORE ...]"
    if names:
        usage += f"\n       %(prog)s COMMAND ...   (COMMAND: {', '.join(names)})"
    parser = _Parser(
        prog="softmax",
        usage=usage,
        description=description,
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_arguments(parser)
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
            name = token.split("=", 1)[0]
            long_match = name.startswith("--") and any(o.startswith(name) for o in takes_value)
            needs_value = "=" not in token and (name in takes_value or long_match)
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


def _run(argv, stdin, stdout, stderr) -> int:
    subparsers, commands, broken = _load_commands()
    scores_parser = _scores_parser(subparsers)
    argv = protect_negative_numbers(argv, set(scores_parser._option_string_actions))
    index = _command_index(argv, scores_parser, set(commands) | set(broken))

    if index is None:
        parser = scores_parser
        try:
            args = _parse(parser, argv)
            args.commands = tuple(commands)
            args.stdin = stdin
            from ._cli_scores import run

            return run(args, stdout, stderr)
        except UsageError as exc:
            exc.usage = exc.usage or parser.format_usage()
            raise

    name = argv[index]
    if name in broken:
        raise CLIError(f"softmax {name} is not available: {broken[name]}")
    parser = commands[name]
    try:
        args = _parse(parser, argv[:index] + argv[index + 1 :])
        args.stdin = stdin
        return args.func(args, stdout, stderr)
    except CLIError as exc:
        exc.prog = getattr(exc, "prog", None) or parser.prog
        if isinstance(exc, UsageError):
            exc.usage = exc.usage or parser.format_usage()
        raise


def _report(exc: CLIError, stderr) -> None:
    prog = getattr(exc, "prog", None) or "softmax"
    usage = getattr(exc, "usage", None)
    if usage:
        stderr.write(usage)
    stderr.write(f"{prog}: error: {exc}\n")
    if exc.hint:
        stderr.write(f"Try '{prog} --help' for more information.\n")


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
        An `ExitStatus`: 0 success, 1 failure, 2 bad command line or input.

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
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    try:
        # argparse prints help and version to sys.stdout: send them to ours.
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            status = _run(argv, stdin, stdout, stderr)
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
    except BrokenPipeError:
        # The reader left early (softmax apply big.csv | head): stop quietly,
        # and keep Python from complaining while it flushes stdout at exit.
        if stdout is sys.stdout:
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitStatus.ERROR)
    except (ValueError, TypeError) as exc:
        # Library validation of a value that reached it unchecked.
        _report(UsageError(str(exc)), stderr)
        return int(ExitStatus.USAGE)
    except MemoryError:
        stderr.write("softmax: error: out of memory\n")
        return int(ExitStatus.ERROR)
    except OSError as exc:
        stderr.write(f"softmax: error: {exc}\n")
        return int(ExitStatus.ERROR)


if __name__ == "__main__":
    sys.exit(main())
