"""The official NAS-Bench-101 file (`nasbench_only108.tfrecord`, `nasbench_full.tfrecord`) without
TensorFlow.

A TFRecord file is a run of records: uint64 length, uint32 masked CRC-32C of the length, the bytes,
uint32 masked CRC-32C of the bytes (both checked here). Each NAS-Bench-101 record is JSON:
[module_hash, epochs, adjacency as a "0110..." string, ops as "input,...,output", base64 of a
`nasbench.ModelMetrics` protobuf]. The protobuf schema (nasbench/lib/model_metrics.proto) is declared
below with protobuf's descriptor API, so no generated module is needed.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import google_crc32c
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from zcpipe.errors import InputError, PipelineError

_MASK_DELTA = 0xA282EAD8


class TfRecordError(PipelineError, InputError, ValueError):
    pass


def masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def read_records(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        yield from _records(f, path)


def _records(f: BinaryIO, path: Path) -> Iterator[bytes]:
    offset = 0
    while True:
        head = f.read(12)
        if not head:
            return
        if len(head) < 12:
            raise TfRecordError(f"{path} ends inside a record header at byte {offset}: the file is truncated")
        length, length_crc = struct.unpack("<QI", head)
        if masked_crc(head[:8]) != length_crc:
            raise TfRecordError(f"{path}: record header at byte {offset} fails its CRC; the file is damaged")
        body = f.read(length)
        tail = f.read(4)
        if len(body) < length or len(tail) < 4:
            raise TfRecordError(f"{path} ends inside the record at byte {offset}: the file is truncated")
        if masked_crc(body) != struct.unpack("<I", tail)[0]:
            raise TfRecordError(f"{path}: record at byte {offset} fails its CRC; the file is damaged")
        offset += 16 + length
        yield body


def write_records(path: Path, records: Iterator[bytes] | list[bytes]) -> None:
    """TFRecord framing around `records` (tests and benchmarks write files in the official structure)."""
    with path.open("wb") as f:
        for body in records:
            head = struct.pack("<Q", len(body))
            f.write(head + struct.pack("<I", masked_crc(head)) + body + struct.pack("<I", masked_crc(body)))


def _metrics_class():
    # nasbench/lib/model_metrics.proto (proto2), field numbers as published.
    fdp = descriptor_pb2.FileDescriptorProto(name="zcpipe_nasbench_model_metrics.proto", package="nasbench")
    fdp.syntax = "proto2"
    f = descriptor_pb2.FieldDescriptorProto
    ev = fdp.message_type.add(name="EvaluationData")
    for number, name in enumerate(
        ("current_epoch", "training_time", "train_accuracy", "validation_accuracy", "test_accuracy"), start=1
    ):
        ev.field.add(name=name, number=number, type=f.TYPE_DOUBLE, label=f.LABEL_OPTIONAL)
    ev.field.add(name="checkpoint_path", number=6, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    mm = fdp.message_type.add(name="ModelMetrics")
    mm.field.add(
        name="evaluation_data",
        number=1,
        type=f.TYPE_MESSAGE,
        label=f.LABEL_REPEATED,
        type_name=".nasbench.EvaluationData",
    )
    mm.field.add(name="trainable_parameters", number=2, type=f.TYPE_INT32, label=f.LABEL_OPTIONAL)
    mm.field.add(name="total_time", number=3, type=f.TYPE_DOUBLE, label=f.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench.ModelMetrics")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench.EvaluationData")),
    )


ModelMetrics, EvaluationData = _metrics_class()


def encode_record(module_hash: str, epochs: int, matrix, ops: list[str], evaluations: list[dict], params: int) -> bytes:
    """One record in the official structure (for tests and benchmarks)."""
    metrics = ModelMetrics(
        evaluation_data=[EvaluationData(**e) for e in evaluations], trainable_parameters=params, total_time=1.0
    )
    adjacency = "".join(str(int(v)) for row in matrix for v in row)
    payload = [module_hash, epochs, adjacency, ",".join(ops), base64.b64encode(metrics.SerializeToString()).decode()]
    return json.dumps(payload).encode()


def decode_record(body: bytes) -> tuple[str, int, list[list[int]], list[str], object]:
    """(module_hash, epochs, matrix, ops, ModelMetrics) of one record."""
    try:
        module_hash, epochs, raw_adjacency, raw_ops, raw_metrics = json.loads(body)
        dim = round(len(raw_adjacency) ** 0.5)
        if dim * dim != len(raw_adjacency):
            raise ValueError(f"adjacency of {len(raw_adjacency)} entries is not square")
        matrix = [[int(c) for c in raw_adjacency[r * dim : (r + 1) * dim]] for r in range(dim)]
        metrics = ModelMetrics.FromString(base64.b64decode(raw_metrics))
    except (ValueError, TypeError) as e:
        raise TfRecordError(
            f"not a NAS-Bench-101 record ({e}); expected [hash, epochs, adjacency, ops, metrics]"
        ) from None
    return module_hash, int(epochs), matrix, raw_ops.split(","), metrics
