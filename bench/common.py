"""What the benchmark scripts share: running one measured stage in a fresh Python process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_child(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh Python with ``args``; the JSON it prints last (wall s, peak MiB)."""
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         cwd=ROOT, check=False)
    if res.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])
