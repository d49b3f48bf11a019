"""Which architectures a run covers, validated before any work starts."""

from __future__ import annotations

from pathlib import Path

from zcpipe.pipeline.config import IngestConfig
from zcpipe.workers.spaces import ArchError, SearchSpace


def plan_archs(space: SearchSpace, cfg: IngestConfig) -> list[str]:
    if cfg.all_archs:
        keys = list(space.enumerate())
    elif cfg.limit is not None:
        keys = space.sample(cfg.limit, cfg.seed)
    else:
        keys = _read_arch_file(space, Path(cfg.archs_file))
    return list(dict.fromkeys(keys))  # equal architectures share a key: keep the first


def _read_arch_file(space: SearchSpace, path: Path) -> list[str]:
    keys, errors = [], []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            keys.append(space.parse(text))
        except ArchError as e:
            errors.append(f"{path}:{n}: {e}")
    if errors:
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise ArchError("; ".join(errors[:3]) + more)
    if not keys:
        raise ArchError(f"{path} lists no architectures (one {space.name} arch key per line)")
    return keys
