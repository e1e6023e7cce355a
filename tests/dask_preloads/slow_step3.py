"""Dask worker preload for tests/test_parallel.py: this worker announces when it starts Step 3
of a patch (it writes the file named by STAMPS_TEST_STEP3_FLAG) and then waits there, so that
the test can kill it in the middle of Step 3."""

import os
import time
from pathlib import Path

from stamps_python import pipeline

# Dask may import a preload twice: wrap the original function once only
_run_patch_step = getattr(pipeline, "_unslowed_run_patch_step", pipeline._run_patch_step)
pipeline._unslowed_run_patch_step = _run_patch_step


def _slow(step, patch_dir, parms):
    if step == 3:
        Path(os.environ["STAMPS_TEST_STEP3_FLAG"]).write_text(f"{os.getpid()} {patch_dir}\n")
        time.sleep(600)
    return _run_patch_step(step, patch_dir, parms)


pipeline._run_patch_step = _slow
