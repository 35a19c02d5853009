"""`loading_script/piano_metronome.py`: the builder as a class (any datasets), and as a classic script (< 4)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from piano_metronome.outputs.schema import features

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "loading_script" / "piano_metronome.py"


def load_script_module():
    spec = importlib.util.spec_from_file_location("piano_metronome_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # datasets looks the builder's module up by name
    spec.loader.exec_module(module)
    return module


def test_script_exposes_the_package_builder(tmp_path):
    module = load_script_module()
    builder = module.PianoMetronome(config_name="demo", data_dir=str(ROOT / "raw_midi"),
                                    cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare(output_dir=str(tmp_path / "out"), file_format="arrow")
    splits = builder.info.splits
    assert set(splits) == {"train", "validation", "test"}
    assert sum(s.num_examples for s in splits.values()) > 0
    assert builder.info.features == features()


def test_classic_loading_script_on_datasets_3(tmp_path, datasets3_python):
    python = datasets3_python
    code = (
        "import datasets, sys\n"
        "assert datasets.__version__.startswith('3.'), datasets.__version__\n"
        f"d = datasets.load_dataset({str(SCRIPT)!r}, 'demo', data_dir={str(ROOT / 'raw_midi')!r},"
        f" trust_remote_code=True, cache_dir={str(tmp_path / 'cache')!r})\n"
        "assert set(d) == {'train', 'validation', 'test'}, d\n"
        "f = d['train'].features\n"
        "assert f['key_label'].names[12] == 'Cm' and f['note_step'].feature.dtype == 'int8'\n"
        "assert d['train'][0]['window_id'] == 'demo/da/000'\n"
        "print('ok', {k: v.num_rows for k, v in d.items()})\n"
    )
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok")


def test_datasets_5_refuses_scripts_but_loads_built_folders():
    import datasets

    if int(datasets.__version__.split(".")[0]) < 4:
        pytest.skip("only datasets >= 4 refuses loading scripts")
    with pytest.raises(RuntimeError, match="no longer supported"):
        datasets.load_dataset(str(SCRIPT), "demo")
