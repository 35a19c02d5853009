"""Publish a built dataset folder to the Hugging Face Hub as it is: Arrow shards + card.

``push_to_hub`` would rewrite the shards as Parquet (and delete files under ``data/`` it did
not write), so the byte-identical, checksummed shards would not be what users download. We
upload the folder itself with ``create_repo`` + ``upload_folder``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from piano_metronome.outputs.layout import CHECKSUM_FILE

REQUIRED = ("README.md", CHECKSUM_FILE)


@dataclass(frozen=True)
class UploadPlan:
    """What would be sent: files (relative path, bytes) from a folder to a dataset repo."""

    folder: Path
    repo_id: str
    files: list[tuple[str, int]]

    @property
    def total_bytes(self) -> int:
        """Bytes to send."""
        return sum(size for _, size in self.files)


def plan_upload(folder: Path, repo_id: str) -> UploadPlan:
    """List the folder's files; refuse a folder that is not a finished build."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such dataset folder (run `piano-metronome build` first)")
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: not a built dataset (missing {', '.join(missing)})")
    if "/" not in repo_id or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"repo id must look like 'user/name', got {repo_id!r}")
    files = sorted((p.relative_to(folder).as_posix(), p.stat().st_size)
                   for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return UploadPlan(folder, repo_id, files)


def upload(plan: UploadPlan, private: bool, token: str | None) -> str:
    """Create the dataset repo if needed and upload the folder in one commit; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(plan.repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(plan.folder), repo_id=plan.repo_id, repo_type="dataset",
                             commit_message="Upload piano_metronome dataset build", ignore_patterns=[".*"])
    return str(getattr(info, "commit_url", info))
