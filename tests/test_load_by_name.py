"""`load_dataset("piano_metronome", …)` after `piano-metronome build`: offline, from the repository
root and from any other folder, in datasets 5.x and 3.x, always the last build.

Each test runs the real command and real `load_dataset` calls in subprocesses, with their own
HF_HOME (so the developer's cache is untouched) and HF_HUB_OFFLINE=1. The checkout's generated
`piano_metronome/.huggingface.yaml` is saved and restored around each test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from piano_metronome.outputs.layout import BUILD_REPORT, REPO_YAML
from piano_metronome.outputs.register import REGISTRATION_MARKER, YAML_MARKER, write_standalone_yaml
from piano_metronome.paths import PROJECT_ROOT

YAML_PATH = PROJECT_ROOT / "piano_metronome" / REPO_YAML

#: Prints {"<config>/<split>": rows} for the configs asked for, read by name.
LOAD_CODE = """
import json, sys
from datasets import load_dataset
out = {}
for config in sys.argv[1:]:
    if config == "-":
        d = load_dataset("piano_metronome")
    elif config.endswith(":stream"):
        name = config.split(":")[0]
        d = {"train": list(load_dataset("piano_metronome", name, split="train", streaming=True))}
    else:
        d = load_dataset("piano_metronome", config)
    for split, rows in d.items():
        out[f"{config}/{split}"] = len(rows)
    if config == "d1" or config == "demo":
        out[f"{config}/first_id"] = d["train"][0]["window_id"]
print(json.dumps(out))
"""


@pytest.fixture
def isolated(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An environment with its own HF_HOME, offline, and the checkout's YAML restored afterwards."""
    saved = YAML_PATH.read_bytes() if YAML_PATH.exists() else None
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("HF_DATASETS_CACHE", None)
    try:
        yield env
    finally:
        if saved is None:
            YAML_PATH.unlink(missing_ok=True)
        else:
            YAML_PATH.write_bytes(saved)


def build(env: dict[str, str], out: Path, *args: str) -> str:
    """Run `piano-metronome build` with the project's raw folder (so it registers by name); its stdout."""
    done = subprocess.run([sys.executable, "-m", "piano_metronome", "build", "--out", str(out), *args],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def load(python: str, cwd: Path, env: dict[str, str], *configs: str) -> dict[str, object]:
    """Row counts per config/split, loaded by name in a fresh process started in ``cwd``."""
    done = subprocess.run([python, "-c", LOAD_CODE, *configs], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def expected(out: Path, *configs: str) -> dict[str, int]:
    """Row counts per config/split, as the build folder's own report states them."""
    report = json.loads((out / BUILD_REPORT).read_text(encoding="utf-8"))["configs"]
    return {f"{c}/{s}": n["num_examples"] for c in configs for s, n in report[c].items()}


def counts(loaded: dict[str, object]) -> dict[str, object]:
    """Only the row counts of a load's result."""
    return {k: v for k, v in loaded.items() if not k.endswith("first_id")}


def as_default(expected_counts: dict[str, int]) -> dict[str, int]:
    """Counts of a config as the load without a config name reports them (key ``-/<split>``)."""
    return {"-/" + k.split("/", 1)[1]: v for k, v in expected_counts.items()}


def test_demo_build_loads_by_name_everywhere_then_a_corpus_build_replaces_it(isolated, tmp_path, corpus) -> None:
    out = tmp_path / "dataset"
    stdout = build(isolated, out, "--config", "demo")
    assert 'load_dataset("piano_metronome", "demo")' in stdout
    demo = expected(out, "demo")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # default config from another folder first (a load from the root adds datasets' own cache entries)
    assert counts(load(sys.executable, elsewhere, isolated, "-")) == as_default(demo)
    for cwd in (elsewhere, PROJECT_ROOT):
        got = load(sys.executable, cwd, isolated, "demo", "demo:stream")
        assert counts(got) == {**demo, "demo:stream/train": demo["demo/train"]}, cwd
        assert got["demo/first_id"] == "demo/da/000"
    assert YAML_PATH.read_text(encoding="utf-8").startswith(YAML_MARKER)

    # the corpus arrives and is built: the same name now gives the corpus windows, never the cached demo
    stdout = build(isolated, out, "--corpus", str(corpus))
    assert 'load_dataset("piano_metronome", "all")' in stdout
    full = expected(out, "d1", "d2", "demo")
    for cwd in (elsewhere, PROJECT_ROOT):
        got = load(sys.executable, cwd, isolated, "d1", "d2", "demo")
        assert counts(got) == full, cwd
        assert got["d1/first_id"].startswith("d1/")


def test_rebuild_with_other_data_is_what_loads_next(isolated, tmp_path) -> None:
    out = tmp_path / "dataset"
    build(isolated, out, "--config", "demo")
    first = expected(out, "demo")
    build(isolated, out, "--config", "demo", "--window-steps", "32")  # other data: shorter windows
    second = expected(out, "demo")
    assert second != first
    for cwd in (tmp_path, PROJECT_ROOT):
        assert counts(load(sys.executable, cwd, isolated, "demo")) == second, cwd
    entries = [p for p in (tmp_path / "hf" / "datasets" / "piano_metronome").glob("*/*/*")
               if (p / REGISTRATION_MARKER).is_file()]
    assert sorted(p.parts[-3] for p in entries) == ["demo", "recordings"]  # the first build's entries are gone


def test_on_datasets_3(isolated, tmp_path, datasets3_python) -> None:
    python = datasets3_python
    out = tmp_path / "dataset"
    build(isolated, out, "--config", "demo")
    build(isolated, out, "--config", "demo", "--window-steps", "32")
    want = expected(out, "demo")
    assert counts(load(python, tmp_path, isolated, "-")) == as_default(want)
    for cwd in (tmp_path, PROJECT_ROOT):
        got = load(python, cwd, isolated, "demo", "demo:stream")
        assert counts(got) == {**want, "demo:stream/train": want["demo/train"]}, cwd


def test_a_yaml_we_did_not_write_is_left_alone(tmp_path, demo_dataset) -> None:
    package = tmp_path / "piano_metronome"
    package.mkdir()
    (package / REPO_YAML).write_text("mine: true\n", encoding="utf-8")
    from piano_metronome.outputs.register import RegistrationError

    with pytest.raises(RegistrationError, match="not written by"):
        write_standalone_yaml(demo_dataset, package)
    assert (package / REPO_YAML).read_text(encoding="utf-8") == "mine: true\n"


def test_a_build_elsewhere_is_not_registered_by_default(isolated, tmp_path) -> None:
    raw = tmp_path / "raw"
    (raw / "demo").mkdir(parents=True)
    for f in (PROJECT_ROOT / "raw_midi" / "demo").iterdir():
        (raw / "demo" / f.name).write_bytes(f.read_bytes())
    stdout = build(isolated, tmp_path / "mine", "--raw", str(raw))
    assert f'load_dataset("{(tmp_path / "mine").resolve()}", "demo")' in stdout
    assert not (tmp_path / "hf" / "datasets" / "piano_metronome").exists()
