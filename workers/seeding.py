"""Seeds derived from (run seed, arch key), so a value never depends on which worker computed it."""

from __future__ import annotations

import hashlib


def derive_seed(run_seed: int, arch: str, purpose: str = "init") -> int:
    digest = hashlib.sha256(f"{run_seed}\x00{arch}\x00{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF
