"""Shared helpers of the benchmarks: where the corpus is, timing a whole child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def corpus_dir() -> Path:
    """The corpus from $PIANO_METRONOME_CORPUS (or ../shared/corpus); exit with a clear message if absent."""
    path = Path(os.environ.get("PIANO_METRONOME_CORPUS", ROOT.parent / "shared" / "corpus"))
    if not (path / "d1").is_dir():
        sys.exit(f"benchmark needs the corpus: set PIANO_METRONOME_CORPUS (looked in {path})")
    return path


def corpus_files() -> list[Path]:
    """Every corpus recording, sorted."""
    return sorted(corpus_dir().glob("d*/*.mid"))


_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
sys.argv = ["piano-metronome"] + json.loads(sys.argv[1])
from piano_metronome.cli import app
try:
    app(standalone_mode=False)
finally:
    print("@@" + json.dumps({"seconds_inside": time.perf_counter() - t0,
                            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_cli(args: list[str], env: dict | None = None) -> dict:
    """Run ``piano-metronome ARGS`` in a fresh interpreter: wall seconds (whole process) and peak RSS."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"piano-metronome {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    stats = json.loads(done.stdout.rsplit("@@", 1)[1])
    return {"wall_s": wall, **stats}
