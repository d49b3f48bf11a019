"""Offline, strict validation of the KubeRay manifests in deploy/ (no cluster, no kubeconform).

kubernetes-validate knows the core API but passes any custom resource, RayJob included, so the ray.io/v1
fields zcpipe emits are modelled here with pydantic (`extra="forbid"`: an unknown or misspelled field
fails), after KubeRay's v1 CRDs (ray-operator/apis/ray/v1: raycluster_types.go, rayjob_types.go). Every
embedded pod template is then checked by kubernetes-validate in strict mode, as the Pod it becomes.

    python deploy/kuberay.py deploy/*.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

import kubernetes_validate
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

KUBERNETES_VERSION = "1.30.0"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Metadata(Strict):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class PodTemplate(BaseModel):
    """A core/v1 PodTemplateSpec: checked field by field by kubernetes-validate, not here."""

    model_config = ConfigDict(extra="allow")
    spec: dict[str, Any]
    metadata: dict[str, Any] | None = None


def _start_params(v: dict) -> dict:
    bad = [k for k, x in v.items() if not isinstance(x, str)]
    if bad:  # KubeRay's rayStartParams is map[string]string: `num-cpus: 0` is rejected by the API server
        raise ValueError(f"rayStartParams values must be strings (quote them): {bad}")
    return v


class HeadGroupSpec(Strict):
    rayStartParams: dict[str, Any] = Field(default_factory=dict)
    template: PodTemplate
    serviceType: Literal["ClusterIP", "NodePort", "LoadBalancer"] | None = None
    headService: dict[str, Any] | None = None
    enableIngress: bool | None = None

    _params = field_validator("rayStartParams")(_start_params)


class ScaleStrategy(Strict):
    workersToDelete: list[str] | None = None


class WorkerGroupSpec(Strict):
    groupName: str
    replicas: int | None = Field(default=None, ge=0)
    minReplicas: int | None = Field(default=None, ge=0)
    maxReplicas: int | None = Field(default=None, ge=0)
    numOfHosts: int | None = Field(default=None, ge=1)
    idleTimeoutSeconds: int | None = None
    suspend: bool | None = None
    rayStartParams: dict[str, Any] = Field(default_factory=dict)
    template: PodTemplate
    scaleStrategy: ScaleStrategy | None = None

    _params = field_validator("rayStartParams")(_start_params)


class AutoscalerOptions(Strict):
    upscalingMode: Literal["Default", "Aggressive", "Conservative"] | None = None
    idleTimeoutSeconds: int | None = None
    image: str | None = None
    resources: dict[str, Any] | None = None


class RayClusterSpec(Strict):
    rayVersion: str | None = None
    enableInTreeAutoscaling: bool | None = None
    autoscalerOptions: AutoscalerOptions | None = None
    headGroupSpec: HeadGroupSpec
    workerGroupSpecs: list[WorkerGroupSpec] = Field(default_factory=list)
    suspend: bool | None = None
    headServiceAnnotations: dict[str, str] | None = None


class RayCluster(Strict):
    apiVersion: Literal["ray.io/v1"]
    kind: Literal["RayCluster"]
    metadata: Metadata
    spec: RayClusterSpec


class RayJobSpec(Strict):
    entrypoint: str = Field(min_length=1)
    runtimeEnvYAML: str | None = None
    jobId: str | None = None
    shutdownAfterJobFinishes: bool | None = None
    ttlSecondsAfterFinished: int | None = Field(default=None, ge=0)
    activeDeadlineSeconds: int | None = Field(default=None, ge=1)
    backoffLimit: int | None = Field(default=None, ge=0)
    submissionMode: Literal["K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"] | None = None
    entrypointNumCpus: float | None = None
    entrypointNumGpus: float | None = None
    entrypointResources: str | None = None
    rayClusterSpec: RayClusterSpec | None = None
    clusterSelector: dict[str, str] | None = None
    submitterPodTemplate: PodTemplate | None = None
    suspend: bool | None = None

    @field_validator("runtimeEnvYAML")
    @classmethod
    def _runtime_env(cls, v: str | None) -> str | None:
        if v is not None:
            env = yaml.safe_load(v)
            known = {"env_vars", "pip", "uv", "conda", "working_dir", "py_modules", "excludes", "container",
                     "image_uri", "config", "nsight", "py_executable"}  # fmt: skip
            if not isinstance(env, dict) or set(env) - known:
                raise ValueError(f"runtimeEnvYAML holds unknown runtime_env fields: {sorted(set(env or {}) - known)}")
        return v


class RayJob(Strict):
    apiVersion: Literal["ray.io/v1"]
    kind: Literal["RayJob"]
    metadata: Metadata
    spec: RayJobSpec


KINDS: dict[str, type[Strict]] = {"RayCluster": RayCluster, "RayJob": RayJob}


class ManifestError(ValueError):
    """A manifest with an unknown, misspelled or ill-typed field; the message says where."""


def _pod_templates(doc: dict) -> list[tuple[str, dict]]:
    spec = doc["spec"]
    cluster = spec.get("rayClusterSpec", spec) if doc["kind"] == "RayJob" else spec
    out = []
    if cluster:
        out.append(("headGroupSpec.template", cluster["headGroupSpec"]["template"]))
        for g in cluster.get("workerGroupSpecs", []):
            out.append((f"workerGroupSpecs[{g['groupName']}].template", g["template"]))
    if doc["kind"] == "RayJob" and "submitterPodTemplate" in spec:
        out.append(("submitterPodTemplate", spec["submitterPodTemplate"]))
    return out


def validate_document(doc: dict, where: str = "manifest") -> None:
    if not isinstance(doc, dict):
        raise ManifestError(f"{where}: not a mapping")
    kind = doc.get("kind")
    if kind not in KINDS:  # core kinds (a Secret) go to kubernetes-validate whole
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            raise ManifestError(f"{where}: {kind}: {e.message}") from None
        return
    try:
        KINDS[kind].model_validate(doc)
    except ValidationError as e:
        first = e.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        raise ManifestError(f"{where}: {kind} {path}: {first['msg']}") from None
    for path, template in _pod_templates(doc):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "template", **template.get("metadata", {})},
               "spec": template["spec"]}  # fmt: skip
        try:
            kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            field = ".".join(str(p) for p in e.path)
            raise ManifestError(f"{where}: {kind} {path}.{field}: {e.message}") from None


def validate_file(path: str | Path) -> int:
    """Validate every document of a YAML file; returns how many there were."""
    docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d is not None]
    for i, doc in enumerate(docs):
        validate_document(doc, f"{path}#{i}")
    return len(docs)


def main(paths: list[str]) -> int:
    status = 0
    for p in paths:
        try:
            print(f"{p}: {validate_file(p)} documents valid")
        except ManifestError as e:
            print(f"error: {e}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or [str(p) for p in sorted(Path(__file__).parent.glob("*.yaml"))]))
