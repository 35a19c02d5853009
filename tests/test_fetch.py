"""``fetch``: verified files only under final names, one line per failure, no traceback, fast offline.

Network tests talk only to servers on 127.0.0.1 that the test itself starts (or a closed port).
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from piano_metronome.commands import fetch as fetch_command
from piano_metronome.inputs import fetch as f
from piano_metronome.inputs import manifest as m
from tests.conftest import command_app

COMMITTED = Path(__file__).resolve().parent.parent / "raw_midi" / "manifest.csv"


def make_app() -> typer.Typer:
    """A bare app with only this command, so these tests do not depend on other commands."""
    return command_app(fetch_command.register)


def run(manifest: Path, raw: Path, *args: str | Path):
    """Run ``piano-metronome fetch --manifest M --raw R ARGS`` in-process."""
    return CliRunner().invoke(make_app(), ["fetch", "--manifest", str(manifest), "--raw", str(raw),
                                           *map(str, args)])


def all_files(folder: Path) -> set[str]:
    """Every file under ``folder`` (hidden temp files included), relative, so strays show."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def failed_lines(output: str) -> list[str]:
    """The per-file failure lines of a fetch's output."""
    return [line for line in output.splitlines() if line.startswith("failed ")]


def flip_one_byte(path: Path, at: int = 100) -> None:
    """Corrupt a copy in place without changing its size, so only the sha256 can catch it."""
    data = bytearray(path.read_bytes())
    data[at % len(data)] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def fake_source(tmp_path: Path) -> tuple[Path, Path]:
    """A ``--from`` folder of five made-up recordings and its manifest (URLs point at nothing yet)."""
    src = tmp_path / "src"
    for subset, names in {"d1": ["aa_90_C.mid", "ab_91_D.mid", "ac_92_E.mid"],
                          "d2": ["ba_80_Am.mid", "bb_81_Bm.mid"]}.items():
        (src / subset).mkdir(parents=True)
        for name in names:
            (src / subset / name).write_bytes(f"MThd fake recording {subset}/{name} ".encode() * 40)
    rows = m.build_manifest(src, {"d1": 4, "d2": 2}, source_url="http://127.0.0.1:9/{subset}/{file_name}")
    m.write_manifest(rows, tmp_path / "manifest.csv")
    return src, tmp_path / "manifest.csv"


# --- the corpus --------------------------------------------------------------------------------

@pytest.mark.corpus
def test_fetch_from_corpus_brings_all_361_then_skips_them(corpus: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    result = run(COMMITTED, raw, "--from", corpus)
    assert result.exit_code == 0, result.output
    assert "361 fetched, 0 skipped (already valid), 0 failed" in result.output
    rows = m.read_manifest(COMMITTED)
    assert all_files(raw) == {f"{r.subset}/{r.file_name}" for r in rows}
    assert all(f.file_problem(r.path(raw), r) is None for r in rows)
    again = run(COMMITTED, raw, "--from", corpus)
    assert again.exit_code == 0, again.output
    assert "0 fetched, 361 skipped (already valid), 0 failed" in again.output


@pytest.mark.corpus
def test_corrupted_corpus_copy_is_refused_by_name(corpus: Path, tmp_path: Path) -> None:
    rows = [r for r in m.read_manifest(COMMITTED) if r.recording_id in ("d1/aa", "d1/ab", "d2/fs", "d2/gf")]
    src, raw = tmp_path / "src", tmp_path / "raw"
    for row in rows:
        row.path(src).parent.mkdir(parents=True, exist_ok=True)
        row.path(src).write_bytes(row.path(corpus).read_bytes())
    bad = rows[1]
    flip_one_byte(bad.path(src))
    m.write_manifest(rows, tmp_path / "sub.csv")
    result = run(tmp_path / "sub.csv", raw, "--from", src)
    assert result.exit_code == 1
    assert failed_lines(result.output) == [
        f"failed {bad.subset}/{bad.file_name}: sha256 {m.sha256_file(bad.path(src))[:12]}… "
        f"does not match the manifest's {bad.sha256[:12]}…"]
    assert "Traceback" not in result.output
    assert all_files(raw) == {f"{r.subset}/{r.file_name}" for r in rows if r is not bad}


# --- made-up recordings: failures and recoveries ----------------------------------------------

def test_corrupted_copy_leaves_nothing_partial(fake_source: tuple[Path, Path], tmp_path: Path) -> None:
    src, manifest = fake_source
    flip_one_byte(src / "d2" / "ba_80_Am.mid")
    (src / "d1" / "ab_91_D.mid").write_bytes(b"MThd short")
    raw = tmp_path / "raw"
    result = run(manifest, raw, "--from", src)
    assert result.exit_code == 1
    lines = failed_lines(result.output)
    assert len(lines) == 2
    assert lines[0].startswith("failed d1/ab_91_D.mid: size is 10 bytes but the manifest says")
    assert lines[1].startswith("failed d2/ba_80_Am.mid: sha256 ")
    assert "3 fetched, 0 skipped (already valid), 2 failed" in result.output
    assert all_files(raw) == {"d1/aa_90_C.mid", "d1/ac_92_E.mid", "d2/bb_81_Bm.mid"}


def test_missing_source_file_is_named(fake_source: tuple[Path, Path], tmp_path: Path) -> None:
    src, manifest = fake_source
    (src / "d1" / "ac_92_E.mid").unlink()
    result = run(manifest, tmp_path / "raw", "--from", src)
    assert result.exit_code == 1
    assert failed_lines(result.output) == [
        f"failed d1/ac_92_E.mid: not found in {src} (looked for {src / 'd1' / 'ac_92_E.mid'})"]


def test_present_but_wrong_file_is_kept_unless_forced(fake_source: tuple[Path, Path], tmp_path: Path) -> None:
    """A file at a manifest path that is not the manifest's is the user's: named, kept, exit 2; --force replaces."""
    src, manifest = fake_source
    raw = tmp_path / "raw"
    assert run(manifest, raw, "--from", src).exit_code == 0
    (raw / "d1" / "aa_90_C.mid").write_bytes(b"edited by hand")
    flip_one_byte(raw / "d2" / "bb_81_Bm.mid")
    (raw / "d1" / "ab_91_D.mid").unlink()
    result = run(manifest, raw, "--from", src)
    assert result.exit_code == 2, result.output
    error = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert error == [f"error: {raw / 'd1' / 'aa_90_C.mid'}: exists and is not the manifest's file (size is 14 "
                     f"bytes but the manifest says {(src / 'd1' / 'aa_90_C.mid').stat().st_size}); 1 more file(s) "
                     f"like it; pass --force to replace it"]
    assert (raw / "d1" / "aa_90_C.mid").read_bytes() == b"edited by hand"
    assert not (raw / "d1" / "ab_91_D.mid").exists()  # nothing fetched either: the refusal comes first
    result = run(manifest, raw, "--from", src, "--force")
    assert result.exit_code == 0, result.output
    assert "3 fetched (2 replaced a wrong file), 2 skipped (already valid), 0 failed" in result.output
    assert (raw / "d1" / "aa_90_C.mid").read_bytes() == (src / "d1" / "aa_90_C.mid").read_bytes()


def test_fetcher_itself_refuses_to_replace_without_force(fake_source: tuple[Path, Path], tmp_path: Path) -> None:
    src, manifest = fake_source
    row = m.read_manifest(manifest)[0]
    row.path(tmp_path / "raw").parent.mkdir(parents=True)
    row.path(tmp_path / "raw").write_bytes(b"mine")
    with pytest.raises(f.FetchError, match="pass --force to replace it"):
        f.Fetcher(tmp_path / "raw", src).fetch(row)
    assert row.path(tmp_path / "raw").read_bytes() == b"mine"
    assert f.Fetcher(tmp_path / "raw", src, force=True).fetch(row) == "replaced"


def test_from_an_empty_folder_is_one_summary_line(fake_source: tuple[Path, Path], tmp_path: Path) -> None:
    _, manifest = fake_source
    (tmp_path / "empty").mkdir()
    result = run(manifest, tmp_path / "raw", "--from", tmp_path / "empty")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"error: --from {tmp_path / 'empty'} holds none of the 5 recordings the manifest lists (looked for "
        f"{tmp_path / 'empty'}/<subset>/<file>, e.g. {tmp_path / 'empty' / 'd1' / 'aa_90_C.mid'})"]
    assert not (tmp_path / "raw").exists()


def test_failed_install_removes_its_temp_file(fake_source: tuple[Path, Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    src, manifest = fake_source
    row = m.read_manifest(manifest)[0]
    raw = tmp_path / "raw"

    def no_space(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(f.os, "replace", no_space)
    with pytest.raises(f.FetchError, match=r"cannot write .*aa_90_C.mid \(No space left on device\)"):
        f.Fetcher(raw, src).fetch(row)
    assert all_files(raw) == set()


def test_bad_manifest_or_from_folder_is_one_line(fake_source: tuple[Path, Path], tmp_path: Path) -> None:
    _, manifest = fake_source
    result = run(tmp_path / "nope.csv", tmp_path / "raw")
    assert result.exit_code == 1 and "cannot use manifest" in result.output
    assert "Traceback" not in result.output
    result = run(manifest, tmp_path / "raw", "--from", tmp_path / "nowhere")
    assert result.exit_code == 1 and "no such folder" in result.output


# --- downloads -----------------------------------------------------------------------------------

def attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The addresses the fetcher requests, in order; each request still goes to the real network call."""
    calls: list[str] = []
    real = f._urlopen_read

    def counted(url: str, limit: int, timeout: float) -> bytes:
        calls.append(url)
        return real(url, limit, timeout)

    monkeypatch.setattr(f, "_urlopen_read", counted)
    return calls


def test_no_network_fails_fast_with_one_line_per_file(fake_source: tuple[Path, Path], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Fast, counted rather than timed: one attempt at the unreachable host, and every other file
    of that host is failed without asking again."""
    _, manifest = fake_source  # its addresses are http://127.0.0.1:9/… (nothing listens there)
    calls = attempts(monkeypatch)
    result = run(manifest, tmp_path / "raw")
    assert calls == ["http://127.0.0.1:9/d1/aa_90_C.mid"]
    assert result.exit_code == 1
    lines = failed_lines(result.output)
    assert [line.split(":")[0] for line in lines] == [
        "failed d1/aa_90_C.mid", "failed d1/ab_91_D.mid", "failed d1/ac_92_E.mid",
        "failed d2/ba_80_Am.mid", "failed d2/bb_81_Bm.mid"]
    assert "cannot reach 127.0.0.1:9" in lines[0] and "no network?" in lines[0]
    assert "Traceback" not in result.output
    assert all_files(tmp_path / "raw") == set()


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A loopback HTTP server over a folder, stopped after the test: (folder, base address)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_verifies_and_reports_http_errors(fake_source: tuple[Path, Path], tmp_path: Path,
                                                   http_root: tuple[Path, str]) -> None:
    src, manifest = fake_source
    www, base = http_root
    for row in m.read_manifest(manifest):
        if row.recording_id != "d2/ba":  # this one will answer 404
            row.path(www).parent.mkdir(parents=True, exist_ok=True)
            row.path(www).write_bytes(row.path(src).read_bytes())
    flip_one_byte(www / "d1" / "ab_91_D.mid")
    rows = m.build_manifest(src, {"d1": 4, "d2": 2}, source_url=base + "/{subset}/{file_name}")
    m.write_manifest(rows, tmp_path / "http.csv")
    raw = tmp_path / "raw"
    result = run(tmp_path / "http.csv", raw)
    assert result.exit_code == 1
    lines = failed_lines(result.output)
    assert len(lines) == 2
    assert lines[0].startswith("failed d1/ab_91_D.mid: sha256 ")
    assert lines[1] == f"failed d2/ba_80_Am.mid: HTTP 404 File not found from {base}/d2/ba_80_Am.mid"
    assert all_files(raw) == {"d1/aa_90_C.mid", "d1/ac_92_E.mid", "d2/bb_81_Bm.mid"}


def test_silent_server_times_out_and_is_not_retried(fake_source: tuple[Path, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that accepts and never answers costs one timeout in all (a hang would never end
    the test), not one per file."""
    src, _ = fake_source
    calls = attempts(monkeypatch)
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        base = f"http://127.0.0.1:{silent.getsockname()[1]}"
        rows = m.build_manifest(src, {"d1": 4, "d2": 2}, source_url=base + "/{subset}/{file_name}")
        m.write_manifest(rows, tmp_path / "silent.csv")
        result = run(tmp_path / "silent.csv", tmp_path / "raw", "--timeout", "0.5")
    assert len(calls) == 1
    assert result.exit_code == 1
    lines = failed_lines(result.output)
    assert len(lines) == 5
    assert "no answer from 127.0.0.1" in lines[0] and "within 0.5 s" in lines[0]
    assert all(": not tried: no answer" in line for line in lines[1:])


def test_a_bad_manifest_row_does_not_stop_the_others(fake_source, tmp_path):
    src, manifest = fake_source
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines + [lines[1]]) + "\n")  # the first recording's row again
    raw = tmp_path / "raw"
    result = run(manifest, raw, "--from", src)
    assert result.exit_code == 1
    assert "repeats" in result.output and "skipped manifest row" in result.output
    assert len([p for p in all_files(raw) if p.endswith(".mid")]) == 5
