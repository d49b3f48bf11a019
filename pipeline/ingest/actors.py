"""The Ray actor: a ProxyWorker that stages each chunk as a shard and returns its manifest."""

from __future__ import annotations

import logging
import os

import ray

from zcpipe.pipeline.ingest.rows import to_shard
from zcpipe.store import write_staged_shard
from zcpipe.workers import failpoints
from zcpipe.workers.data import DatasetError, DataSpec, load_batch
from zcpipe.workers.data import batch_sha256 as data_sha256
from zcpipe.workers.device import DeviceFault, sharing_note
from zcpipe.workers.spaces import get_space
from zcpipe.workers.worker import ProxyWorker, WorkerConfig

log = logging.getLogger(__name__)
# Exit status of a worker that ended itself after a device fault (shows in Ray's logs).
DEVICE_FAULT_EXIT = 75


class IngestActor:
    """A Ray actor around one ProxyWorker: computes a chunk of architectures and stages it as a shard."""

    def __init__(self, cfg: WorkerConfig, data: DataSpec, batch_sha256: str, store: str, proxies: tuple[str, ...]):
        # Each actor reads the batch itself (a restarted actor needs nothing from the driver)
        # and checks it is the very batch the configuration hash was computed from.
        images, labels, num_classes = load_batch(data)
        if (found := data_sha256(images, labels)) != batch_sha256:
            raise DatasetError(
                f"worker read a different batch ({found[:12]} != {batch_sha256[:12]}): "
                "the dataset differs between the driver and this node"
            )
        self.worker = ProxyWorker(cfg, images, labels, num_classes)
        self.store = store
        self.proxies = proxies
        space = get_space(cfg.space, **cfg.space_params)
        self.slots = space.slots()
        self.space = space.name  # an alias (nb301) stores under the space it builds (nds-darts)
        self.dataset = data.name

    def pid(self) -> int:
        return os.getpid()

    def sharing_note(self, actors_per_gpu: int) -> str | None:
        """A warning when `actors_per_gpu` actors share this node's GPU without CUDA MPS."""
        return sharing_note(actors_per_gpu, self.worker.cfg.device)

    def run_chunk(self, run_id: str, shard_id: str, config_hash: str, archs: list[tuple[str, str]]):
        # Tests: only the chunks they list (by index, "00003") may run, so a kill lands where they say.
        failpoints.hold("ingest-chunk", shard_id.rsplit("-", 1)[-1])
        try:
            records = self.worker.compute_many(archs)
        except DeviceFault as e:
            # The CUDA context is dead: end the process, unexpectedly for Ray, so that it starts a
            # fresh one and retries this chunk (the driver reruns it if the restarts run out).
            # Nothing of the chunk was staged, so nothing is lost or half-written.
            log.error("device fault, restarting the worker: %s", e)
            logging.shutdown()
            os._exit(DEVICE_FAULT_EXIT)
        ids = {"space": self.space, "config_hash": config_hash, "run_id": run_id, "shard_id": shard_id}
        arch_rows, layer_rows, block = to_shard(
            records,
            **ids,
            dataset=self.dataset,
            proxies=self.proxies,
            slots=self.slots,
            node=(ray.util.get_node_ip_address(), ray.get_runtime_context().get_node_id()),
        )
        manifest = write_staged_shard(
            self.store,
            **ids,
            arch_rows=arch_rows,
            layer_rows=layer_rows,
            proxy_names=list(self.proxies),
            tensors=block,
        )
        failed = sum(r.status == "failed" for r in records)
        return manifest, failed, sum(r.seconds for r in records)


def remote_actor_class(max_restarts: int = 3):
    # A worker process that dies is restarted and its in-flight chunk retried by Ray itself.
    return ray.remote(max_restarts=max_restarts, max_task_retries=max_restarts)(IngestActor)
