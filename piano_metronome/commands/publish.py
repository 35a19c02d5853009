"""``piano-metronome publish``: upload a built dataset folder to the Hub, shards untouched."""

from __future__ import annotations

from pathlib import Path

import typer

from piano_metronome.commands.common import console, fail


def register(app: typer.Typer) -> None:
    """Add the ``publish`` command."""
    app.command("publish")(publish)


def publish(
    repo_id: str = typer.Option(..., "--repo-id", help="Hub dataset repository, 'user/name'."),
    dataset: Path = typer.Option(Path("dataset"), "--dataset", "-d", help="Built dataset folder to upload."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be sent; send nothing."),
    private: bool = typer.Option(False, help="Create the repository as private."),
    token: str = typer.Option(None, envvar="HF_TOKEN", help="Hub token (default: $HF_TOKEN or your login)."),
) -> None:
    """Upload DATASET (README.md card, Arrow shards, reports, checksums) to a Hub dataset repo.

    Uses create_repo + upload_folder, so the shards users download are byte for byte the
    ones `piano-metronome validate` and `rebuild` check (push_to_hub would rewrite them as
    Parquet). Run `piano-metronome validate` first. The file list and the address are printed
    on stdout, progress on stderr. Exit codes: 0 sent (or listed), 2 not a
    built dataset or a bad repo id, 1 the upload failed.
    """
    from piano_metronome.outputs.publish import plan_upload, upload

    try:
        plan = plan_upload(dataset, repo_id)
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    out = console()
    verb = "would upload" if dry_run else "uploading"
    out.print(f"{verb} {len(plan.files)} files ({plan.total_bytes / 1e6:.1f} MB) from {plan.folder} "
              f"to https://huggingface.co/datasets/{plan.repo_id}")
    for name, size in plan.files:
        typer.echo(f"{size:>12,}  {name}")
    if dry_run:
        return
    try:
        url = upload(plan, private, token)
    except Exception as exc:  # network, auth, permissions: one line, no traceback
        raise fail(f"upload to {plan.repo_id} failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                   code=1) from None
    typer.echo(f"done: {url}")
