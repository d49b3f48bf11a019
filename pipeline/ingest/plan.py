"""Which architectures a run covers, validated before any work starts."""

from __future__ import annotations

from pathlib import Path

from zcpipe.pipeline.ingest.config import IngestConfig
from zcpipe.workers.spaces import ArchError, SearchSpace


def plan_archs(space: SearchSpace, cfg: IngestConfig) -> dict[str, str]:
    """Arch key -> buildable spec, in plan order; equal architectures share a key (the first wins)."""
    if cfg.all_archs:
        texts = list(space.enumerate())
    elif cfg.limit is not None:
        texts = space.sample(cfg.limit, cfg.seed)
    else:
        return _read_arch_file(space, Path(cfg.archs_file))
    plan: dict[str, str] = {}
    for t in texts:
        plan.setdefault(space.parse(t), space.spec(t))
    return plan


def _read_arch_file(space: SearchSpace, path: Path) -> dict[str, str]:
    keys: dict[str, str] = {}
    errors = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            keys.setdefault(space.parse(text), space.spec(text))
        except ArchError as e:
            errors.append(f"{path}:{n}: {e}")
    if errors:
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise ArchError("; ".join(errors[:3]) + more)
    if not keys:
        raise ArchError(f"{path} lists no architectures (one {space.name} arch key per line)")
    return keys
