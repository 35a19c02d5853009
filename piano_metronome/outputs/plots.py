"""Figures a person reads faster than tables: offsets, latency, velocity by position, grid fit, piano roll.

Each function takes Arrow tables of a built folder and returns a ``matplotlib.figure.Figure``
(no pyplot, so no global state and no GUI backend: the figures render with Agg wherever
they are saved). Every axis says its unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from matplotlib.figure import Figure

from piano_metronome.constants import LOWEST_MIDI_PITCH

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap, Normalize

SUBSET_COLOURS = {"d1": "#1f77b4", "d2": "#ff7f0e", "demo": "#7f7f7f"}
SUBDIVISION_NAMES = {4: ("", "e", "&", "a"), 2: ("", "&"), 3: ("", "trip", "let"), 1: ("",)}
DPI = 120


def _colour(subset: str) -> str:
    """A stable colour per subset (others get the matplotlib cycle's)."""
    return SUBSET_COLOURS.get(subset, "#2ca02c")


def _subsets(table: pa.Table) -> list[str]:
    """Subsets present, in a stable order (d1, d2, demo, then the rest)."""
    present = set(table["subset"].to_pylist())
    known = [s for s in SUBSET_COLOURS if s in present]
    return known + sorted(present - set(known))


def _per_note(table: pa.Table, column: str) -> np.ndarray:
    """A per-window column repeated once per hit, aligned with the flattened ``note_*`` lists."""
    lengths = pc.list_value_length(table["note_step"]).to_numpy(zero_copy_only=False)
    repeated: np.ndarray = np.repeat(table[column].to_numpy(zero_copy_only=False), lengths)
    return repeated


def _flat(table: pa.Table, column: str) -> np.ndarray:
    """A ``note_*`` list column flattened to one value per hit."""
    flat: np.ndarray = pc.list_flatten(table[column]).to_numpy(zero_copy_only=False)
    return flat


def offsets_ms(windows: pa.Table) -> np.ndarray:
    """Every hit's offset in milliseconds: steps × (60000 / bpm / steps_per_beat), positive = late."""
    step_ms = 60000.0 / _per_note(windows, "bpm").astype(np.float64) / _per_note(windows, "steps_per_beat")
    offsets: np.ndarray = _flat(windows, "note_offset").astype(np.float64) * step_ms
    return offsets


def offset_histogram(windows: pa.Table) -> Figure:
    """Offset distribution per subset, in ms (left) and in steps with the ambiguous band (right)."""
    fig = Figure(figsize=(12, 4.8), dpi=DPI, layout="constrained")
    ax_ms, ax_steps = fig.subplots(1, 2)
    for subset in _subsets(windows):
        part = windows.filter(pc.equal(windows["subset"], subset))
        ms, steps = offsets_ms(part), _flat(part, "note_offset")
        label = f"{subset} ({len(ms):,} notes, SD {np.std(ms):.1f} ms)"
        ax_ms.hist(ms, bins=np.arange(-150, 151, 2.5), density=True, histtype="step", lw=1.6,
                   color=_colour(subset), label=label)
        ax_steps.hist(steps, bins=np.linspace(-0.75, 0.75, 121), density=True, histtype="step", lw=1.6,
                      color=_colour(subset), label=subset)
    lo, hi = np.percentile(offsets_ms(windows), [0.2, 99.8])
    ax_ms.set_xlim(min(lo, -20) * 1.1, max(hi, 20) * 1.1)
    ax_ms.set(xlabel="offset from the grid step (ms; positive = late, latency removed)",
              ylabel="density (1/ms)", title="Timing offsets in milliseconds")
    for edge in (-0.35, 0.35):
        ax_steps.axvline(edge, color="0.4", ls=":", lw=1)
    ax_steps.axvspan(-0.75, -0.5, color="0.9", zorder=0)
    ax_steps.axvspan(0.5, 0.75, color="0.9", zorder=0)
    ax_steps.set(xlim=(-0.75, 0.75), xlabel="offset (steps; dotted: ±0.35 ambiguous, grey: beyond ±0.5, chords only)",
                 ylabel="density (1/step)", title="Timing offsets in steps", yscale="log")
    for ax in (ax_ms, ax_steps):
        ax.axvline(0, color="k", lw=0.8)
        ax.legend(frameon=False, fontsize=9)
        ax.grid(alpha=0.3)
    return fig


def latency_plot(recordings: pa.Table) -> Figure:
    """Each recording's latency (dots), per subset, with a box for the spread."""
    ok = recordings.filter(pc.equal(recordings["status"], "ok"))
    subsets = _subsets(ok)
    fig = Figure(figsize=(10, 1.6 + 1.2 * len(subsets)), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    rng = np.random.default_rng(0)  # jitter only; fixed so the figure is reproducible
    for y, subset in enumerate(subsets):
        latency = ok.filter(pc.equal(ok["subset"], subset))["latency_ms"].to_numpy()
        ax.boxplot(latency, positions=[y], orientation="horizontal", widths=0.6, showfliers=False,
                   medianprops={"color": "k"}, boxprops={"color": "0.5"}, whiskerprops={"color": "0.5"},
                   capprops={"color": "0.5"})
        ax.scatter(latency, y + rng.uniform(-0.22, 0.22, len(latency)), s=14, alpha=0.7, color=_colour(subset),
                   edgecolor="none", zorder=3)
        ax.annotate(f"median {np.median(latency):.1f} ms, n = {len(latency)}", (np.median(latency), y + 0.33),
                    ha="center", fontsize=9)
    ax.axvline(0, color="k", lw=0.8, ls="--")
    ax.set_yticks(range(len(subsets)), subsets)
    ax.set_ylim(-0.6, len(subsets) - 0.4)
    ax.set(xlabel="latency: the player's constant lag behind the click (ms; negative = early)",
           ylabel="subset", title="Latency per recording (one dot per recording)")
    ax.grid(axis="x", alpha=0.3)
    return fig


def position_labels(steps_per_beat: int, beats_per_bar: int) -> list[str]:
    """``1 e & a 2 e & a …`` for the steps of one bar (counting syllables for the sub-beats)."""
    names = SUBDIVISION_NAMES.get(steps_per_beat) or tuple([""] + ["·"] * (steps_per_beat - 1))
    return [str(beat + 1) if i == 0 else names[i] for beat in range(beats_per_bar) for i in range(steps_per_beat)]


def velocity_by_position(windows: pa.Table) -> Figure:
    """Velocity at each step of the bar (box: quartiles; dot: mean) and how many notes fall there."""
    subsets = _subsets(windows)
    fig = Figure(figsize=(6.5 * len(subsets), 6.5), dpi=DPI, layout="constrained")
    axes = fig.subplots(2, len(subsets), squeeze=False, height_ratios=[3, 1], sharex="col")
    for col, subset in enumerate(subsets):
        part = windows.filter(pc.equal(windows["subset"], subset))
        spb, bpb = int(part["steps_per_beat"][0].as_py()), int(part["beats_per_bar"][0].as_py())
        bar = spb * bpb
        position = (_per_note(part, "start_step") + _flat(part, "note_step")) % bar
        velocity = _flat(part, "note_velocity").astype(np.float64)
        groups = [velocity[position == p] for p in range(bar)]
        ax, ax_n = axes[0, col], axes[1, col]
        ax.boxplot(groups, positions=range(bar), widths=0.6, showfliers=False, medianprops={"color": "k"},
                   boxprops={"facecolor": _colour(subset), "alpha": 0.35}, patch_artist=True)
        ax.plot(range(bar), [g.mean() if len(g) else np.nan for g in groups], "o", color=_colour(subset),
                label="mean")
        ax.set(ylabel="MIDI velocity (1–127)", title=f"{subset}: velocity by position in the bar "
               f"({spb} steps per beat)", ylim=(0, 127))
        ax.legend(frameon=False, loc="lower right")
        ax_n.bar(range(bar), [len(g) for g in groups], color=_colour(subset), alpha=0.7)
        ax_n.set(ylabel="notes", xlabel="position in the bar (beat number, then sub-beats)")
        ax_n.set_xticks(range(bar), position_labels(spb, bpb))
        for a in (ax, ax_n):
            a.grid(axis="y", alpha=0.3)
            for beat in range(1, bpb):
                a.axvline(beat * spb - 0.5, color="0.6", lw=0.8)
    return fig


def _outliers(conc: np.ndarray, sd: np.ndarray, count: int) -> list[int]:
    """Indices worth a label: the lowest grid fits and the widest spreads (each once)."""
    chosen = list(np.argsort(conc)[:count]) + list(np.argsort(-sd)[:count]) + list(np.flatnonzero(sd < 1.0))
    return list(dict.fromkeys(int(i) for i in chosen))


def grid_fit_plot(recordings: pa.Table, label: int = 3) -> Figure:
    """Per recording: how tightly onsets sit on the grid against their timing spread in ms."""
    ok = recordings.filter(pc.equal(recordings["status"], "ok"))
    fig = Figure(figsize=(9, 6), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    for subset in _subsets(ok):
        part = ok.filter(pc.equal(ok["subset"], subset))
        conc, sd = part["fit_concentration"].to_numpy(), part["timing_sd_ms"].to_numpy()
        ax.scatter(conc, sd, s=18, alpha=0.75, color=_colour(subset), edgecolor="none",
                   label=f"{subset} ({len(conc)} recordings)")
    conc, sd = ok["fit_concentration"].to_numpy(), ok["timing_sd_ms"].to_numpy()
    ids = ok["recording_id"].to_pylist()
    for i in _outliers(conc, sd, label):
        ax.annotate(ids[i], (conc[i], sd[i]), xytext=(-6, 4), textcoords="offset points", fontsize=8, ha="right")
    ax.set(xlabel="grid fit: concentration of onsets on the sub-beats (0 = none, 1 = every onset on a step)",
           ylabel="timing SD around the grid (ms, robust)", xlim=(0, 1.02), ylim=(-2, None),
           title="Grid fit per recording (lowest fits, widest spreads and quantized takes labelled)")
    ax.legend(frameon=False, loc="lower left")
    ax.grid(alpha=0.3)
    return fig


def _pitch_name(midi: int) -> str:
    """``C4`` for MIDI 60."""
    return ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")[midi % 12] + str(midi // 12 - 1)


def _roll_notes(ax: Axes, row: Mapping[str, Any], spb: int, cmap: Colormap, norm: Normalize) -> tuple[int, int]:
    """Draw each hit as a bar from its played time for its duration; return the pitch range."""
    from matplotlib.collections import PolyCollection

    step = np.asarray(row["note_step"], dtype=np.float64)
    offset = np.asarray(row["note_offset"], dtype=np.float64)
    pitch = np.asarray(row["note_key"], dtype=np.int64) + LOWEST_MIDI_PITCH
    start, dur = (step + offset) / spb, np.asarray(row["note_duration"], dtype=np.float64) / spb
    velocity = np.asarray(row["note_velocity"], dtype=np.float64)
    boxes = [[(s, p - 0.4), (s + d, p - 0.4), (s + d, p + 0.4), (s, p + 0.4)]
             for s, d, p in zip(start, dur, pitch, strict=True)]
    ax.add_collection(PolyCollection(boxes, facecolors=cmap(norm(velocity)), edgecolors="k", linewidths=0.4))
    # the shift from the grid: a tick at the step, a line to the played onset
    ax.hlines(pitch, step / spb, start, colors="k", lw=0.8)
    ax.plot(step / spb, pitch, "|", color="k", ms=6, mew=0.8)
    return (int(pitch.min()), int(pitch.max())) if len(pitch) else (60, 72)


def piano_roll(row: Mapping[str, Any]) -> Figure:
    """One window: hits coloured by velocity at their played time (step + offset), pedal underneath."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    spb, bpb, steps = int(row["steps_per_beat"]), int(row["beats_per_bar"]), int(row["num_steps"])
    beats = steps / spb
    fig = Figure(figsize=(13, 7), dpi=DPI, layout="constrained")
    ax, ax_pedal = fig.subplots(2, 1, sharex=True, height_ratios=[6, 1])
    cmap, norm = colormaps["viridis"], Normalize(1, 127)
    low, high = _roll_notes(ax, row, spb, cmap, norm)
    for beat in np.arange(0, beats + 1e-9, 1.0 / spb):
        whole = abs(beat - round(beat)) < 1e-9
        bar_line = whole and round(beat) % bpb == 0
        ax.axvline(beat, color="0.3" if bar_line else "0.75" if whole else "0.9", lw=1.2 if bar_line else 0.6,
                   zorder=0)
    ax.set_ylim(low - 2, high + 2)
    ticks = [p for p in range(low - 2, high + 3) if p % 12 in (0, 7)]
    ax.set_yticks(ticks, [_pitch_name(p) for p in ticks])
    ax.set(ylabel="pitch (C and G labelled)", xlim=(-0.5, beats + 0.5),
           title=f"{row['window_id']}: {float(row['bpm']):.1f} BPM, {spb} steps per beat, latency "
                 f"{float(row['latency_ms']):.1f} ms removed; box = played note, | = its grid step")
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="MIDI velocity")
    pedal = np.asarray(row["pedal"], dtype=np.float64)
    ax_pedal.fill_between(np.arange(len(pedal) + 1) / spb, np.append(pedal, pedal[-1:]), step="post",
                          color="0.5", alpha=0.6)
    ax_pedal.set(ylim=(0, 127), ylabel="pedal\n(CC64)", xlabel=f"time in beats from the window start "
                 f"(1 beat = {60.0 / float(row['bpm']):.3f} s; bar lines dark, steps light)")
    ax_pedal.set_xticks(np.arange(0, beats + 1e-9, 1.0), minor=True)
    ax_pedal.set_xticks(np.arange(0, beats + 1e-9, bpb))
    valid = int(row["valid_steps"])
    if valid < steps:
        for a in (ax, ax_pedal):
            a.axvspan(valid / spb, beats + 0.5, color="0.85", zorder=-1)
        ax.text((valid / spb + beats) / 2, high + 1.5, "after the end of the recording", ha="center", va="top",
                fontsize=9, color="0.3")
    return fig


#: PNG ``Source`` text chunk of every figure ``plot`` saves: how a later run knows the file is its own.
PNG_SOURCE = "piano-metronome plot"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_MARK = b"tEXtSource\x00" + PNG_SOURCE.encode()


def save_png(figure: Figure, path: Path) -> Path:
    """Write a figure as PNG with our ``Source`` mark, atomically (a temp file renamed into place)."""
    from piano_metronome.safety import write_atomic

    return write_atomic(path, lambda temp: figure.savefig(temp, format="png", metadata={"Source": PNG_SOURCE}))


def why_not_our_png(path: Path) -> str | None:
    """None for a PNG that ``plot`` saved (it carries our ``Source`` mark), else why it is not ours."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if data.startswith(_PNG_MAGIC) and _PNG_MARK in data:
        return None
    return "exists and was not written by `piano-metronome plot`"
