"""The local stack in the foreground: logging, the template to run, and Ctrl-C.

Shared by ``maaskit local up`` and ``maaskit demo``. The stack lives in this one process:
when it stops, every server thread it started stops with it.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from maaskit.errors import MaaskitError
from maaskit.local.deploy import DeployError
from maaskit.local.stack import LocalStack, StackOptions
from maaskit.local.template import TemplateError


class _SecondsFormatter(logging.Formatter):
    """The time of a record formatted once a second: the API front logs every request."""

    _second = -1
    _text = ""

    def formatTime(  # noqa: N802  # overrides logging.Formatter.formatTime
        self, record: logging.LogRecord, datefmt: str | None = None
    ) -> str:
        second = int(record.created)
        if second != self._second:
            self._text = super().formatTime(record, datefmt)
            self._second = second
        return self._text


MOTO_ASL_EVALUATION = "moto.stepfunctions.parser.asl.component.eval_component"


def configure_logging(verbose: bool = False) -> None:
    """Records as ``HH:MM:SS LEVEL logger: message`` on stderr, and no more collected.

    The format shows no thread, process or source line, so records do not gather them
    (the logging HOWTO's optimisations) when this is the process's logging: the access log
    of the API front writes one record per request, and gathering them cost about a third
    of each record.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _SecondsFormatter("%(asctime)s %(levelname)-5s %(name)s: %(message)s", "%H:%M:%S")
    )
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    if handler in logging.getLogger().handlers:  # ours, not a host's (pytest's, say)
        logging.logThreads = False
        logging.logProcesses = False
        logging.logMultiprocessing = False
        logging._srcfile = None  # no caller lookup (sys._getframe) per record
    quiet = logging.INFO if verbose else logging.WARNING
    for name in ("werkzeug", "botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(name).setLevel(quiet)
    # moto's ASL interpreter logs at ERROR every exception a state's evaluation meets, even
    # one the state handles (a Choice's IsPresent on a missing path): a real failure shows
    # as the execution's own error and cause
    logging.getLogger(MOTO_ASL_EVALUATION).setLevel(logging.INFO if verbose else logging.CRITICAL)


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM; Ctrl-C a KeyboardInterrupt; handlers restored after.

    SIGINT's handler is installed explicitly: a shell starts background jobs with SIGINT
    ignored, and Python then never installs its own, so Ctrl-C would do nothing.
    """
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous_term = signal.signal(signal.SIGTERM, handle)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


TEMPLATE_NAME = "template.yaml"


def find_template(explicit: Path | None = None, *, cwd: Path | None = None) -> Path:
    """The template to run: ``--template``, else the nearest ``template.yaml`` from the
    current folder up, else the one beside the installed package's source tree."""
    if explicit is not None:
        if not explicit.is_file():
            raise MaaskitError(f"--template {explicit}: no such file")
        return explicit
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / TEMPLATE_NAME).is_file():
            return folder / TEMPLATE_NAME
    import maaskit

    beside_package = Path(maaskit.__file__).resolve().parents[2] / TEMPLATE_NAME
    if beside_package.is_file():
        return beside_package
    raise MaaskitError(
        f"no {TEMPLATE_NAME} here or in any folder above {here}: run from a maaskit "
        "checkout, or name one with --template PATH"
    )


def start_stack(options: StackOptions) -> LocalStack:
    try:
        return LocalStack(options).start()
    except (TemplateError, DeployError) as err:
        message = str(err)
        if str(options.template) not in message:
            message = f"{options.template}: {message}"
        raise MaaskitError(message) from None


def serve_until_stopped(stack: LocalStack, stop: threading.Event) -> None:
    try:  # from the prompt on: a Ctrl-C that lands while it is printed is a clean stop too
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
