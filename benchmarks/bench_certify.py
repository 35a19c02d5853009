"""Certificate benchmark (issue 15): `certify` beside `build`, both on the whole corpus, in this same run.

Each command runs as its own process (``run_cli``), so start-up and imports count as a user sees them:

1. ``piano-metronome build --corpus … --out TMP`` (every config);
2. ``piano-metronome certify TMP --jobs J`` on that build (the tracker in J forked workers);
3. with ``--serial``, ``certify --jobs 1`` too, for the workers' speed-up.

Printed: seconds of each, the ratio certify ÷ build (the issue allows certify to be slower), and the
per-take tracker time. Needs the ``verify`` extra.

Usage: PIANO_METRONOME_CORPUS=../shared/corpus python benchmarks/bench_certify.py [--jobs 2] [--serial] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import corpus_dir, run_cli  # noqa: E402


def main() -> None:
    """Build once, certify it, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="certify worker processes (default 2)")
    parser.add_argument("--serial", action="store_true", help="also time certify --jobs 1")
    parser.add_argument("--keep", type=Path, help="build and certify here (a new folder), and keep it")
    args = parser.parse_args()
    corpus = corpus_dir()
    with tempfile.TemporaryDirectory(prefix="bench-certify-") as tmp:
        out = args.keep or Path(tmp) / "dataset"
        build = run_cli(["build", "--corpus", str(corpus), "--out", str(out), "--name", ""])
        runs = {args.jobs: run_cli(["certify", str(out), "--corpus", str(corpus), "--jobs", str(args.jobs)])}
        if args.serial and args.jobs != 1:
            runs[1] = run_cli(["certify", str(out), "--corpus", str(corpus), "--jobs", "1"])
        report = json.loads((out / "build_report.json").read_text(encoding="utf-8"))
        if "certificates" not in report:  # run_cli cannot see typer's exit code: check certify's own record
            sys.exit("certify did not store its certificates; run it by hand to see why")
        takes = report["recordings"]
    print(f"build (whole corpus, all configs): {build['wall_s']:.1f} s wall, peak {build['max_rss_mb']:.0f} MB")
    for jobs, run in runs.items():
        print(f"certify --jobs {jobs}: {run['wall_s']:.1f} s wall ({run['wall_s'] / takes:.2f} s per take over "
              f"{takes} takes), peak {run['max_rss_mb']:.0f} MB (parent), "
              f"certify/build = {run['wall_s'] / build['wall_s']:.1f}x")
    if 1 in runs and args.jobs in runs and args.jobs != 1:
        print(f"workers: --jobs {args.jobs} is {runs[1]['wall_s'] / runs[args.jobs]['wall_s']:.2f}x faster "
              "than --jobs 1")


if __name__ == "__main__":
    main()
