"""Small utilities shared by every stamps_python script and step.

Error reporting (one-line errors, non-zero exit), output-folder checks, --help formatting, atomic
product writes, logging to the console and to ``stamps.log``, progress bars, step timing, and
StaMPS/MATLAB date numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import logging
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

LOGGER_NAME = "stamps"
LOG_FILE = "stamps.log"
EXIT_BROKEN_PIPE = 128 + 13  # as a Unix tool killed by SIGPIPE (e.g. the reader was `head`)


class StampsError(Exception):
    """A user-facing error: bad input, missing prerequisite, bad parameter.

    The message is printed as one line (naming the file or parameter and what is wrong) and the
    script exits non-zero, without a traceback.
    """


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` that shows each option's default: ``(default: X)`` is appended unless the help
    text already says what the default is, and not to flags or options without a default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.nargs == 0 or action.default is None or action.required:
            return text
        return super()._get_help_string(action) or ""


RUN_METAVAR = "RUN"


def add_run_argument(
    parser: argparse.ArgumentParser,
    help: str,
    aliases: Sequence[str | Sequence[str]] = (),
    default: str | None = None,
    required: bool = True,
) -> None:
    """The run directory as the positional ``RUN`` (optional when ``default`` is given), with
    ``aliases``: older option spellings (``--config``, ``--input-path``, ``--output``) that still
    work. Without ``default``, RUN must be given unless ``required`` is False. Read it back with
    :func:`run_argument`."""
    parser.add_argument(
        "run",
        nargs="?",
        metavar=RUN_METAVAR,
        default=None,
        help=help if default is None else f"{help} (default: {default})",
    )
    for alias in aliases:
        names = [alias] if isinstance(alias, str) else list(alias)
        parser.add_argument(
            *names,
            dest=f"run_alias_{names[0].lstrip('-').replace('-', '_')}",
            metavar=RUN_METAVAR,
            default=None,
            help=f"same as {RUN_METAVAR}, the older spelling kept for existing command lines "
            "(default: RUN)",
        )
    parser.set_defaults(run_default=default, run_required=required)


def run_argument(args: argparse.Namespace) -> Path | None:
    """The run directory given as ``RUN`` or one of its aliases (None when it is optional and
    not given); two different ones, or none when it is required, is a StampsError."""
    given = {"RUN": args.run} if args.run is not None else {}
    for key, value in vars(args).items():
        if key.startswith("run_alias_") and value is not None:
            given["--" + key[len("run_alias_") :].replace("_", "-")] = value
    if len({str(Path(v)) for v in given.values()}) > 1:
        listed = ", ".join(f"{k} {v}" for k, v in given.items())
        raise StampsError(f"the run directory is given twice, differently: {listed}")
    if given:
        return Path(next(iter(given.values())))
    if args.run_default is None:
        if not args.run_required:
            return None
        raise StampsError(f"{RUN_METAVAR}: the run directory is required")
    return Path(args.run_default)


def check_output_dir(path: str | Path, option: str) -> Path:
    """Check, creating nothing, that folder ``path`` (given as ``option``) can be written to.

    An existing ``path`` must be a writable directory; otherwise its nearest existing parent must
    be a writable directory (the folder is made later). Anything else is a one-line StampsError,
    so a script stops before doing any work.
    """
    path = Path(path)
    target = path
    while not target.exists() and target.parent != target:
        target = target.parent
    where = "" if target == path else f"cannot be created: {target} "
    if not target.is_dir():
        raise StampsError(f"{option} {path}: {where or 'exists and '}is not a directory")
    if not os.access(target, os.W_OK | os.X_OK):
        why = "read-only file system" if _read_only(target) else "permission denied"
        raise StampsError(f"{option} {path}: {where}is not writable ({why})")
    return path


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def get_logger() -> logging.Logger:
    """The suite's logger (console and, once :func:`setup_logging` ran, ``stamps.log``)."""
    return logging.getLogger(LOGGER_NAME)


def setup_logging(run_dir: str | Path | None = None, verbose: bool = False) -> logging.Logger:
    """Log to the console and, when ``run_dir`` is given, append to ``run_dir/stamps.log``."""
    log = get_logger()
    log.setLevel(logging.DEBUG)
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    console.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(console)
    if run_dir is not None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(Path(run_dir) / LOG_FILE, encoding="utf-8")
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
        )
        log.addHandler(file_handler)
    log.propagate = False
    return log


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    An interrupted or failing writer leaves nothing under the final name, so a step can simply be
    run again.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink()


@contextlib.contextmanager
def timed(label: str) -> Iterator[None]:
    """Log ``label`` and, when the block ends, how long it took (wall seconds)."""
    log = get_logger()
    start = time.perf_counter()
    log.info("%s ...", label)
    yield
    log.info("%s done in %.1f s", label, time.perf_counter() - start)


BARS_OFF = "TQDM_DISABLE"  # set (to anything but "" or "0") in processes that draw no bars


def bars_off() -> bool:
    """True in a process that must draw no progress bars (a worker: the driver draws one bar
    over the patches), i.e. when the environment sets ``TQDM_DISABLE``."""
    return os.environ.get(BARS_OFF, "") not in ("", "0")


def progress_bar(iterable: Any = None, *, hide: bool | None = False, **kwargs: Any) -> Any:
    """A tqdm bar over ``iterable``, hidden when ``hide`` is True or :func:`bars_off` (``hide``
    None: hidden unless the console is a terminal, tqdm's rule)."""
    from tqdm import tqdm

    return tqdm(iterable, disable=True if bars_off() else hide, **kwargs)


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def parse_yyyymmdd(text: str, what: str = "date") -> _dt.date:
    """Parse a ``YYYYMMDD`` string; a malformed one is a :class:`StampsError` naming ``what``."""
    try:
        if len(text) != 8 or not text.isdigit():
            raise ValueError
        return _dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise StampsError(f"{what}: '{text}' is not a date in YYYYMMDD form") from None


def datenum(yyyymmdd: str | _dt.date) -> int:
    """MATLAB ``datenum`` (days since year 0) of a date, as StaMPS stores ``day``/``master_day``."""
    date = parse_yyyymmdd(yyyymmdd) if isinstance(yyyymmdd, str) else yyyymmdd
    return date.toordinal() + 366


def datestr(day: float) -> str:
    """``YYYYMMDD`` of a MATLAB datenum (inverse of :func:`datenum`)."""
    return _dt.date.fromordinal(int(round(day)) - 366).strftime("%Y%m%d")


def run_cli(
    main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None
) -> int:
    """Run a script's ``main``; a :class:`StampsError` becomes one line on stderr and exit code 1.

    Output piped into a reader that stops early (``stamps_parms RUN list | head``) ends quietly
    with exit code 141, as a Unix tool killed by SIGPIPE.
    """
    try:
        code = main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # further writes (and Python's flush at exit) would raise again: send them nowhere
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    except StampsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        get_logger().debug("error: %s", exc)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; products being written were discarded", file=sys.stderr)
        return 130
    return int(code or 0)
