"""Patches in parallel (n_cores processes, a Dask cluster) give the products of a serial run.

The Dask tests start a real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1 and
stop them afterwards.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from stamps_python.parallel import (
    ParallelOptions,
    jobqueue_cluster,
    read_cluster_config,
)
from stamps_python.parms import set_parm
from stamps_python.pipeline import run_steps
from stamps_python.prep_isce import prepare
from stamps_python.stamps_main import main as stamps_main
from stamps_python.synthetic import generate_stack
from stamps_python.utils import StampsError, get_logger

HERE = Path(__file__).resolve().parent
DASK = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
WORKER = [sys.executable, "-m", "distributed.cli.dask_worker"]


def _h5_datasets(run: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for path in sorted(run.rglob("*.h5")):
        with h5py.File(path, "r") as f:

            def visit(name: str, obj, rel=path.relative_to(run)) -> None:
                if isinstance(obj, h5py.Dataset):
                    out[f"{rel}:{name}"] = np.asarray(obj[()])

            f.visititems(visit)
    return out


def assert_same_products(a: Path, b: Path) -> None:
    da, db = _h5_datasets(a), _h5_datasets(b)
    assert sorted(da) == sorted(db)
    different = [
        k for k in da if not np.array_equal(da[k], db[k], equal_nan=da[k].dtype.kind in "fc")
    ]
    assert different == []
    assert not list(b.rglob(".*.tmp-*")), "half-written products left behind"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared run of 2 x 2 patches on a small synthetic stack (copy it before use)."""
    root = tmp_path_factory.mktemp("parallel")
    generate_stack(
        root / "stack", profile="easy", rows=160, cols=320, n_dates=16, seed=11, progress=False
    )
    run = root / "run"
    prepare(
        root / "stack" / "merged", run, bootstrap_metadata=True, range_patches=2, azimuth_patches=2
    )
    set_parm(run, "unwrap_grid_size", 20)
    return run


@pytest.fixture(scope="module")
def serial(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("serial") / "run"
    shutil.copytree(prepared, run)
    run_steps(run, 1, 6, parallel=ParallelOptions(n_cores=1))
    return run


def _copy(prepared: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(prepared, run)
    return run


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_n_cores_gives_the_serial_products(prepared, serial, tmp_path):
    run = _copy(prepared, tmp_path)
    set_parm(run, "n_cores", 2)  # the parameter, as setparm('n_cores', 2)
    handler = _Lines()
    log = get_logger()
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        timings = run_steps(run, 1, 6)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    assert_same_products(serial, run)
    assert len(timings["worker_peak_mb"]) == 2  # two worker processes did the patches
    lines = handler.lines
    for patch in ("PATCH_1", "PATCH_4"):
        assert any(m.startswith(f"[{patch}] Directory is {patch}") for m in lines)


# --------------------------------------------------------------------------------------------
# a real Dask scheduler and workers on 127.0.0.1


class DaskProcesses:
    """``dask scheduler`` and ``dask worker`` processes on loopback, stopped at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.scheduler_file = root / "scheduler.json"
        self.procs: list[subprocess.Popen] = []
        self.env = {**os.environ, "PYTHONPATH": str(HERE.parent), "TQDM_DISABLE": "1"}

    def start_scheduler(self) -> str:
        self.procs.append(
            subprocess.Popen(
                [
                    *DASK,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--no-dashboard",
                    "--scheduler-file",
                    str(self.scheduler_file),
                ],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        deadline = time.time() + 60
        while not self.scheduler_file.is_file() and time.time() < deadline:
            time.sleep(0.1)
        assert self.scheduler_file.is_file(), "dask scheduler did not start"
        import json

        for _ in range(50):
            try:
                return json.loads(self.scheduler_file.read_text())["address"]
            except (ValueError, KeyError):
                time.sleep(0.1)
        raise AssertionError("no scheduler address")

    def start_worker(self, *extra: str, prefix: tuple[str, ...] = (), env=None) -> subprocess.Popen:
        proc = subprocess.Popen(
            [
                *prefix,
                *WORKER,
                "--scheduler-file",
                str(self.scheduler_file),
                "--nthreads",
                "1",
                "--no-nanny",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
                *extra,
            ],
            env={**self.env, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        return proc

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(scheduler_file=str(self.scheduler_file), timeout=30) as client:
            client.wait_for_workers(n, timeout=60)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture()
def dask_procs(tmp_path: Path) -> Iterator[DaskProcesses]:
    procs = DaskProcesses(tmp_path)
    try:
        yield procs
    finally:
        procs.stop()


def test_dask_cluster_gives_the_serial_products(prepared, serial, tmp_path, dask_procs):
    address = dask_procs.start_scheduler()
    dask_procs.start_worker()
    dask_procs.start_worker()
    dask_procs.wait_for_workers(2)
    run = _copy(prepared, tmp_path)
    timings = run_steps(run, 1, 6, parallel=ParallelOptions(scheduler=address))
    assert_same_products(serial, run)
    assert len(timings["worker_peak_mb"]) == 2


def test_a_worker_killed_in_step3_still_gives_the_serial_products(
    prepared, serial, tmp_path, dask_procs
):
    dask_procs.start_scheduler()
    flag = tmp_path / "in_step3"
    doomed = dask_procs.start_worker(
        "--preload",
        str(HERE / "dask_preloads" / "slow_step3.py"),
        env={"STAMPS_TEST_STEP3_FLAG": str(flag)},
    )
    dask_procs.start_worker()
    dask_procs.wait_for_workers(2)
    run = _copy(prepared, tmp_path)
    errors: list[BaseException] = []

    def drive() -> None:
        try:
            run_steps(run, 1, 5, parallel=ParallelOptions(scheduler_file=dask_procs.scheduler_file))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    driver = threading.Thread(target=drive)
    driver.start()
    deadline = time.time() + 120
    while not flag.is_file() and time.time() < deadline and driver.is_alive():
        time.sleep(0.1)
    assert flag.is_file(), "the slow worker never reached Step 3"
    doomed.send_signal(signal.SIGKILL)  # mid-Step 3 of one patch
    driver.join(timeout=300)
    assert not driver.is_alive() and errors == []
    serial5 = tmp_path / "serial5"
    shutil.copytree(serial, serial5, ignore=shutil.ignore_patterns("phuw*", "uw_*"))
    assert_same_products(serial5, run)


def _hide_run_dir_prefix(root: Path) -> tuple[str, ...]:
    """Command prefix that starts a worker with its own, empty view of ``root``: a private
    tmpfs over it in a new mount namespace (as two machines without a shared file system)."""
    probe = ["unshare", "-m", "sh", "-c", f"mount -t tmpfs tmpfs {root} && true"]
    if shutil.which("unshare") and subprocess.run(probe, capture_output=True).returncode == 0:
        return ("unshare", "-m", "sh", "-c", f'mount -t tmpfs tmpfs {root} && exec "$@"', "sh")
    probe = ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs tmpfs {root} && true"]
    if shutil.which("unshare") and subprocess.run(probe, capture_output=True).returncode == 0:
        return ("unshare", "-rm", "sh", "-c", f'mount -t tmpfs tmpfs {root} && exec "$@"', "sh")
    pytest.fail("this test needs unshare(1) with mount namespaces (util-linux)")


def test_run_dir_the_workers_cannot_see_is_one_line_error(prepared, tmp_path, dask_procs):
    address = dask_procs.start_scheduler()
    hidden = tmp_path / "local_disk"
    hidden.mkdir()
    dask_procs.start_worker(prefix=_hide_run_dir_prefix(hidden))
    dask_procs.wait_for_workers(1)
    run = hidden / "run"
    shutil.copytree(prepared, run)
    with pytest.raises(StampsError, match="not on a file system every Dask worker sees") as err:
        run_steps(run, 1, 1, parallel=ParallelOptions(scheduler=address))
    assert "\n" not in str(err.value)
    assert not list(run.rglob("ps1.h5")) and not list(run.glob(".stamps_fs_check_*"))


def test_unreachable_scheduler_is_one_line_error(prepared, tmp_path, capsys, monkeypatch):
    from stamps_python import parallel

    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT_S", 2.0)
    run = _copy(prepared, tmp_path)
    code = _cli([str(run), "--start", "1", "--end", "1", "--scheduler", "tcp://127.0.0.1:1"])
    err = _errors(capsys)
    assert code == 1 and len(err) == 1
    assert err[0].startswith("error: --scheduler tcp://127.0.0.1:1: unreachable")
    assert not list(run.rglob("ps1.h5"))


def _errors(capsys) -> list[str]:
    """The error lines of a command (the console log goes to stderr too); the last line must
    be the error."""
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert not errors or lines[-1] == errors[-1]
    return errors


def _cli(argv: list[str]) -> int:
    from stamps_python.utils import run_cli

    return run_cli(stamps_main, argv)


def test_a_failing_patch_stops_the_run_with_its_name(prepared, tmp_path, capsys):
    run = _copy(prepared, tmp_path)
    (run / "PATCH_3" / "pscands.h5").write_bytes(b"not HDF5")
    code = _cli([str(run), "--start", "1", "--end", "2", "--n-cores", "2"])
    err = _errors(capsys)
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith("error: PATCH_3: Step 1 failed:")
    assert not (run / "PATCH_3" / "ps1.h5").exists()
    assert not list(run.rglob(".*.tmp-*"))


def test_option_errors_are_one_line(prepared, tmp_path, capsys):
    run = _copy(prepared, tmp_path)
    cases = [
        (["--cluster", "local", "--scheduler", "tcp://x:1"], "give only one way to reach Dask"),
        (["--num-workers", "2"], "--num-workers needs --cluster"),
        (["--cluster", "local", "--cluster-config", "x.yaml"], "needs --cluster slurm"),
        (["--cluster", "slurm", "--cluster-config", str(tmp_path / "no.yaml")], "no such file"),
        (["--n-cores", "0"], "n_cores 0: must be at least 1"),
    ]
    for extra, message in cases:
        code = _cli([str(run), "--start", "1", "--end", "1", *extra])
        err = _errors(capsys)
        assert code == 1 and len(err) == 1 and message in err[0], (extra, err)


# --------------------------------------------------------------------------------------------
# SLURM / PBS job scripts (no queue system needed)


def test_slurm_and_pbs_job_scripts_from_a_config_file(tmp_path):
    cfg = tmp_path / "cluster.yaml"
    cfg.write_text(
        "jobqueue:\n"
        "  slurm:\n"
        "    queue: short\n    account: insar\n    walltime: '02:00:00'\n"
        "    memory: 16GB\n    cores: 4\n    processes: 2\n"
        "    job-extra-directives: ['--constraint=cpu']\n"
        "  pbs:\n"
        "    queue: workq\n    walltime: '01:30:00'\n    memory: 8GB\n    cores: 2\n"
    )
    slurm = jobqueue_cluster("slurm", read_cluster_config(cfg, "slurm"))
    try:
        script = slurm.job_script()
    finally:
        slurm.close()
    for line in (
        "#SBATCH -p short",
        "#SBATCH -A insar",
        "#SBATCH -t 02:00:00",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --constraint=cpu",
    ):
        assert line in script, script
    assert "--nworkers 2" in script and "--nthreads 2" in script
    assert "#SBATCH --mem=15G" in script  # dask-jobqueue states 16 GB as 15 GiB
    pbs = jobqueue_cluster("pbs", read_cluster_config(cfg, "pbs"))
    try:
        script = pbs.job_script()
    finally:
        pbs.close()
    for line in (
        "#PBS -q workq",
        "#PBS -l walltime=01:30:00",
        "#PBS -l select=1:ncpus=2:mem=7630MB",
    ):
        assert line in script, script
    flat = tmp_path / "flat.yaml"
    flat.write_text("queue: long\ncores: 1\nmemory: 2GB\nno-such-option: 1\n")
    with pytest.raises(StampsError, match="--cluster slurm: bad dask-jobqueue option"):
        jobqueue_cluster("slurm", read_cluster_config(flat, "slurm"))


def test_local_cluster_workers_keep_glibc_malloc_and_draw_no_bars():
    # Dask's nanny would start them with MALLOC_TRIM_THRESHOLD_=65536 (Steps 1-4 ~30% slower);
    # one thread per worker for OpenMP/BLAS stays. The nanny also writes its pre-spawn
    # environment into this process's os.environ: restore it.
    from stamps_python.parallel import _dask_client

    names = ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "TQDM_DISABLE")
    saved = dict(os.environ)
    try:
        with _dask_client(ParallelOptions(cluster="local", num_workers=1)) as client:
            seen = client.run(lambda: {k: os.environ.get(k) for k in names})
    finally:
        os.environ.clear()
        os.environ.update(saved)
    (env,) = seen.values()
    assert env == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


def test_a_task_on_any_worker_lifts_dask_malloc_trim_and_hides_bars(monkeypatch):
    from stamps_python.parallel import _lift_malloc_trim, prepare_worker
    from stamps_python.utils import bars_off, progress_bar

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert _lift_malloc_trim() is False  # nothing to undo in a plain process
    assert not bars_off() and not progress_bar(range(3), hide=False).disable
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")  # as a Dask nanny starts a worker
    assert _lift_malloc_trim() is sys.platform.startswith("linux")
    prepare_worker()
    assert bars_off()
    bar = progress_bar(range(3), hide=False)  # an explicit hide=False does not draw either
    assert bar.disable
    bar.close()
