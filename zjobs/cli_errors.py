"""What a person sees when a `zjobs` command fails: one `error:` line, no traceback.

Every failure becomes one line on stderr that names the cause and what to
do, and an exit status: 2 for a usage error, 1 for anything else, 130 for
Ctrl-C. The traceback is printed only with `--debug` or `ZJOBS_DEBUG=1`.
"""

from __future__ import annotations

import os
import sys
import traceback

import click
import pydantic
import zmq

from zjobs.broker.wire.errors import (
    AuthError,
    BrokerError,
    BrokerUnreachable,
    InvalidJob,
    JobCancelled,
    JobFailed,
    ZJobsError,
)

USAGE = 2
FAILURE = 1
INTERRUPTED = 130


def debug_wanted(argv: list[str]) -> tuple[bool, list[str]]:
    """`--debug` anywhere before a `--` (which passes the rest to a program), or ZJOBS_DEBUG=1."""
    cut = argv.index("--") if "--" in argv else len(argv)
    head = [a for a in argv[:cut] if a != "--debug"]
    debug = len(head) < cut or os.environ.get("ZJOBS_DEBUG", "").lower() in ("1", "true", "yes")
    return debug, head + argv[cut:]


def describe(exc: BaseException) -> tuple[str, int]:
    """The one-line message and exit status for `exc`."""
    if isinstance(exc, click.UsageError):
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        return exc.format_message() + hint, USAGE
    if isinstance(exc, click.ClickException):
        return exc.format_message(), FAILURE
    if isinstance(exc, BrokerUnreachable):
        return f"{exc}; is 'zjobs broker' (or 'zjobs up') running there?", FAILURE
    if isinstance(exc, AuthError):
        return (f"{exc.message}; give --curve-dir the directory from 'zjobs keys generate' "
                "whose key is allowed there"), FAILURE
    if isinstance(exc, BrokerError):
        return _broker_error(exc), FAILURE
    if isinstance(exc, InvalidJob | pydantic.ValidationError):  # options given in the shell
        return _invalid(exc), USAGE
    if isinstance(exc, JobFailed | JobCancelled | ZJobsError):
        return str(exc), FAILURE
    if isinstance(exc, zmq.ZMQError):
        return f"ZeroMQ: {exc.strerror}", FAILURE
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}", FAILURE
    text = str(exc).splitlines()[0] if str(exc) else ""
    return (f"unexpected {type(exc).__name__}{': ' + text if text else ''} "
            "(run again with --debug for the traceback)"), FAILURE


def _broker_error(exc: BrokerError) -> str:
    if exc.code == "not_found":
        return f"{exc.message} (not found)"
    return f"the broker refused the request: {exc.message} ({exc.code})"


def _invalid(exc: InvalidJob | pydantic.ValidationError) -> str:
    return str(exc) if isinstance(exc, InvalidJob) else _validation(exc)


def _validation(exc: pydantic.ValidationError) -> str:
    parts = []
    for item in exc.errors()[:3]:
        where = ".".join(str(x) for x in item.get("loc", ()) if not isinstance(x, int))
        msg = str(item.get("msg")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "invalid job: " + "; ".join(parts)


def report(exc: BaseException, debug: bool) -> int:
    """Print `exc` for a person; the exit status."""
    if isinstance(exc, KeyboardInterrupt | click.Abort):
        return INTERRUPTED
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    message, status = describe(exc)
    print(f"error: {message}", file=sys.stderr, flush=True)
    return status
