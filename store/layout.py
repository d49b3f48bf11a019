"""Where things live under a store root (DESIGN.md, "Store")."""

from __future__ import annotations

from pathlib import Path


class StoreLayout:
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.duckdb"

    @property
    def staging(self) -> Path:
        return self.root / "staging"

    @property
    def shards(self) -> Path:
        return self.root / "shards"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def models(self) -> Path:
        return self.root / "models"

    def model(self, name: str) -> Path:
        return self.models / name

    def staged(self, shard_id: str) -> Path:
        return self.staging / shard_id

    def committed(self, space: str, run_id: str, shard_id: str) -> Path:
        return self.shards / space / run_id / shard_id
