"""Where the work of a run is done: in the driver process, in ``n_cores`` local processes, or on
a Dask distributed cluster (a LocalCluster, SLURM or PBS through dask-jobqueue, or a scheduler
the user started).

Everything is handed out through one :class:`concurrent.futures.Executor`: a
``ProcessPoolExecutor`` for ``n_cores``, or a Dask ``Client.get_executor()``; ``None`` means
serial. Dask reschedules the task of a worker that died, and every product is written to a
temporary name and renamed, so a task run twice writes the same bytes.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import socket
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from stamps_python.utils import BARS_OFF, StampsError, get_logger

CLUSTER_KINDS = ("local", "slurm", "pbs")
CONNECT_TIMEOUT_S = 20.0
WORKER_WAIT_S = 120.0
TASK_RETRIES = 2  # on top of Dask's own rescheduling of the tasks of a worker that died
_FS_MARKER = ".stamps_fs_check_"


@dataclass(frozen=True)
class ParallelOptions:
    """How to spread a run: ``n_cores`` local processes, or a Dask cluster.

    ``n_cores`` None means the run's ``n_cores`` parameter (:meth:`for_run` fills it in).
    ``cluster`` is 'local', 'slurm' or 'pbs' (with ``num_workers`` workers; for slurm/pbs
    ``cluster_config`` is a YAML file of dask-jobqueue options, else Dask's own configuration
    under ``~/.config/dask/`` is used); ``scheduler`` (an address such as
    ``tcp://head:8786``) or ``scheduler_file`` connects to a scheduler started by the user.
    """

    n_cores: int | None = None
    cluster: str | None = None
    num_workers: int | None = None
    cluster_config: Path | None = None
    scheduler: str | None = None
    scheduler_file: Path | None = None

    def for_run(self, run_dir: Path) -> ParallelOptions:
        """These options with ``n_cores`` taken from the run's parameters when it is None."""
        if self.n_cores is not None:
            return self
        from stamps_python.parms import load_parms

        return replace(self, n_cores=int(load_parms(run_dir)["n_cores"]))

    @property
    def uses_dask(self) -> bool:
        return bool(self.cluster or self.scheduler or self.scheduler_file)

    @property
    def parallel(self) -> bool:
        return self.uses_dask or (self.n_cores or 1) > 1

    def check(self) -> None:
        """One-line StampsError for a contradictory or invalid combination."""
        given = [
            n
            for n, v in (
                ("--cluster", self.cluster),
                ("--scheduler", self.scheduler),
                ("--scheduler-file", self.scheduler_file),
            )
            if v
        ]
        if len(given) > 1:
            raise StampsError(f"{' and '.join(given)}: give only one way to reach Dask")
        if self.cluster is not None and self.cluster not in CLUSTER_KINDS:
            raise StampsError(
                f"--cluster {self.cluster}: must be one of {', '.join(CLUSTER_KINDS)}"
            )
        if self.n_cores is not None and self.n_cores < 1:
            raise StampsError(f"n_cores {self.n_cores}: must be at least 1")
        if self.num_workers is not None and self.num_workers < 1:
            raise StampsError(f"--num-workers {self.num_workers}: must be at least 1")
        if self.num_workers is not None and not self.cluster:
            raise StampsError("--num-workers needs --cluster (local, slurm or pbs)")
        if self.cluster_config is not None:
            if self.cluster not in ("slurm", "pbs"):
                raise StampsError("--cluster-config needs --cluster slurm or --cluster pbs")
            if not Path(self.cluster_config).is_file():
                raise StampsError(f"--cluster-config {self.cluster_config}: no such file")
        if self.scheduler_file is not None and not Path(self.scheduler_file).is_file():
            raise StampsError(f"--scheduler-file {self.scheduler_file}: no such file")

    @property
    def driver_threads(self) -> int:
        """Threads of the driver's own loops in Steps 6-8: ``n_cores``, or the workers of a
        LocalCluster (they share this machine); 1 when nothing says how many cores it has."""
        if self.cluster == "local":
            return self.n_workers
        return max(self.n_cores or 1, 1)

    @property
    def n_workers(self) -> int:
        """Workers to start for a cluster this run creates (default: ``n_cores``, at least 2)."""
        return self.num_workers or max(self.n_cores or 1, 2)


def read_cluster_config(path: Path | None, kind: str) -> dict[str, Any]:
    """dask-jobqueue options from a YAML file: either flat (``queue: short``) or nested as in
    Dask's ``jobqueue.yaml`` (``jobqueue: {slurm: {queue: short}}``)."""
    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise StampsError(f"--cluster-config {path}: unreadable ({exc})") from None
    if not isinstance(data, Mapping):
        raise StampsError(f"--cluster-config {path}: must hold a mapping of options")
    if "jobqueue" in data:
        data = (data["jobqueue"] or {}).get(kind, {}) or {}
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def jobqueue_cluster(kind: str, config: Mapping[str, Any]) -> Any:
    """A dask-jobqueue SLURMCluster or PBSCluster from ``config`` (nothing is submitted until
    it is scaled). An option dask-jobqueue does not know is a one-line StampsError."""
    import dask_jobqueue

    cls = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}[kind]
    options = {"scheduler_options": {"dashboard_address": None}, **config}
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise StampsError(f"--cluster {kind}: bad dask-jobqueue option ({exc})") from None


def _check_marker(path: str, token: str) -> str:
    """On a worker: read the driver's marker ``path`` (it must hold ``token``) and answer in a
    marker of its own; returns the worker's host name."""
    host = socket.gethostname()
    try:
        seen = Path(path).read_text()
    except OSError:
        return f"{host}: cannot read {path}"
    if seen != token:
        return f"{host}: {path} holds something else"
    answer = Path(f"{path}.{os.getpid()}.{host}")
    answer.write_text(token)
    return ""


def check_shared_filesystem(client: Any, run_dir: Path) -> None:
    """Every Dask worker must see ``run_dir``: the driver writes a marker there, each worker
    reads it and writes its answer beside it, the driver reads the answers. Otherwise a
    one-line StampsError says which worker cannot see it."""
    run_dir = Path(run_dir).resolve()
    token = uuid.uuid4().hex
    marker = run_dir / f"{_FS_MARKER}{token}"
    marker.write_text(token)
    try:
        answers = client.run(_check_marker, str(marker), token)
        problems = [f"{addr} ({msg})" for addr, msg in answers.items() if msg]
        replies = list(run_dir.glob(f"{marker.name}.*"))
        if not problems and len(replies) < len(answers):
            problems = [
                f"{len(answers) - len(replies)} worker(s) wrote where the driver cannot see"
            ]
        if problems:
            raise StampsError(
                f"{run_dir}: not on a file system every Dask worker sees; put the run "
                f"directory on a shared file system (NFS, Lustre, GPFS): {'; '.join(problems)}"
            )
    finally:
        for path in [marker, *run_dir.glob(f"{marker.name}.*")]:
            path.unlink(missing_ok=True)


def _worker_environment() -> dict[str, str]:
    """Environment of the worker processes: no progress bars (the driver draws one)."""
    return {BARS_OFF: "1"}


def _set_worker_environment() -> None:
    """Initializer of the local worker processes (the driver's environment stays as it is)."""
    os.environ.update(_worker_environment())


# glibc's own ceilings for its dynamic thresholds (64-bit): blocks from 32 MiB up are mapped,
# free memory above 64 MiB at the top of the heap is returned to the system
_GLIBC_MMAP_MAX = 32 * 2**20
_GLIBC_TRIM_MAX = 64 * 2**20
_DASK_TRIM = "MALLOC_TRIM_THRESHOLD_"


def _lift_malloc_trim() -> bool:
    """Undo Dask's ``MALLOC_TRIM_THRESHOLD_=65536`` in this process (True when it did).

    A Dask nanny starts its worker with that setting, which also fixes glibc's mmap threshold
    at 128 KiB: every array of a step is then mapped and unmapped afresh, page by page, and
    Steps 1-4 run about 30% slower. glibc cannot go back to its dynamic thresholds, so they are
    set to the values those reach with arrays of tens of MB (mallopt, Linux/glibc only).
    """
    if not os.environ.get(_DASK_TRIM) or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
        ok = libc.mallopt(m_mmap_threshold, _GLIBC_MMAP_MAX) == 1
        ok = ok and libc.mallopt(m_trim_threshold, _GLIBC_TRIM_MAX) == 1
    except (OSError, AttributeError):
        return False
    return bool(ok)


def prepare_worker() -> None:
    """Called by every task on a worker: no progress bars there, glibc's allocator as in a
    plain process (see :func:`_lift_malloc_trim`)."""
    os.environ.update(_worker_environment())
    _lift_malloc_trim()


def _local_pre_spawn_environ() -> dict[str, Any]:
    """Dask's pre-spawn environment of a LocalCluster's workers without its malloc trim setting
    (one thread per worker for OpenMP, MKL and OpenBLAS stays)."""
    import dask

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    env.pop(_DASK_TRIM, None)
    return env


@contextlib.contextmanager
def open_executor(options: ParallelOptions, run_dir: Path) -> Iterator[cf.Executor | None]:
    """The executor ``options`` ask for (None: serial), closed (and any cluster it started
    shut down) when the block ends."""
    options.check()
    log = get_logger()
    if not options.parallel:
        yield None
        return
    if not options.uses_dask:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(
            max_workers=options.n_cores,
            mp_context=ctx,
            initializer=_set_worker_environment,
        ) as pool:
            log.info("patches run in %d local processes (n_cores)", options.n_cores)
            yield pool
        return
    with _dask_client(options) as client:
        n = len(client.scheduler_info().get("workers", {}))
        check_shared_filesystem(client, run_dir)
        log.info("Dask scheduler %s with %d worker(s)", client.scheduler.address, n)
        yield client.get_executor(pure=False, retries=TASK_RETRIES)


@contextlib.contextmanager
def _dask_client(options: ParallelOptions) -> Iterator[Any]:
    """A connected distributed.Client with at least one worker."""
    from distributed import Client, LocalCluster

    cluster = None
    try:
        if options.scheduler or options.scheduler_file:
            where = options.scheduler or f"the scheduler file {options.scheduler_file}"
            try:
                if options.scheduler:
                    client = Client(options.scheduler, timeout=CONNECT_TIMEOUT_S)
                else:
                    client = Client(
                        scheduler_file=str(options.scheduler_file), timeout=CONNECT_TIMEOUT_S
                    )
            except (OSError, TimeoutError, ValueError) as exc:
                raise StampsError(
                    f"--scheduler {where}: unreachable within {CONNECT_TIMEOUT_S:.0f} s ({exc})"
                ) from None
        elif options.cluster == "local":
            import dask

            with dask.config.set(
                {"distributed.nanny.pre-spawn-environ": _local_pre_spawn_environ()}
            ):
                cluster = LocalCluster(
                    n_workers=options.n_workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    env=_worker_environment(),
                )
            client = Client(cluster)
        else:
            config = read_cluster_config(options.cluster_config, str(options.cluster))
            cluster = jobqueue_cluster(str(options.cluster), config)
            cluster.scale(options.n_workers)
            client = Client(cluster)
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except TimeoutError:
            client.close()
            raise StampsError(
                f"Dask: no worker joined within {WORKER_WAIT_S:.0f} s (scheduler "
                f"{client.scheduler.address})"
            ) from None
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
