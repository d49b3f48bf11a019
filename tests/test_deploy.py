"""deploy/: the KubeRay manifests validate strictly offline, a typo anywhere fails, their entrypoints are
commands zcpipe accepts, and the images pin what the project tests."""

from __future__ import annotations

import copy
import importlib.util
import re
import shlex
import sys

import pytest
import typer
import yaml

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
MANIFESTS = sorted(DEPLOY.glob("*.yaml"))


def _kuberay():
    spec = importlib.util.spec_from_file_location("kuberay", DEPLOY / "kuberay.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["kuberay"] = module  # pydantic resolves the models' annotations through it
    spec.loader.exec_module(module)
    return module


def _doc(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def test_every_manifest_validates_strictly():
    kuberay = _kuberay()
    assert {p.name for p in MANIFESTS} >= {"raycluster.yaml", "rayjob-ingest.yaml", "rayjob-sweep.yaml"}
    for path in MANIFESTS:
        assert kuberay.validate_file(path) == 1
    gpu = next(g for g in _doc("raycluster.yaml")["spec"]["workerGroupSpecs"] if g["groupName"] == "gpu")
    assert gpu["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
    for job in ("rayjob-ingest.yaml", "rayjob-sweep.yaml"):
        spec = _doc(job)["spec"]
        assert spec["shutdownAfterJobFinishes"] is True and yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]


def _typo(doc: dict, path: list, new_key: str) -> dict:
    doc = copy.deepcopy(doc)
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[new_key] = node.pop(path[-1])
    return doc


@pytest.mark.parametrize(
    "name, path, typo, says",
    [
        ("rayjob-ingest.yaml", ["spec", "shutdownAfterJobFinishes"], "shutdownAfterJobFinish",
         "shutdownAfterJobFinish"),
        ("rayjob-sweep.yaml", ["spec", "rayClusterSpec", "workerGroupSpecs", 0, "maxReplicas"], "maxReplica",
         "maxReplica"),
        ("raycluster.yaml", ["spec", "headGroupSpec", "template", "spec", "containers", 0, "resources"], "resource",
         "resource"),
        ("rayjob-ingest.yaml", ["spec", "submitterPodTemplate", "spec", "restartPolicy"], "restartPolicies",
         "restartPolicies"),
    ],
)  # fmt: skip
def test_one_misspelled_field_fails_and_says_where(name, path, typo, says):
    kuberay = _kuberay()
    with pytest.raises(kuberay.ManifestError, match=re.escape(says)):
        kuberay.validate_document(_typo(_doc(name), path, typo), name)


def test_ill_typed_ray_fields_fail():
    kuberay = _kuberay()
    doc = _doc("raycluster.yaml")
    doc["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0  # KubeRay wants strings
    with pytest.raises(kuberay.ManifestError, match="quote them"):
        kuberay.validate_document(doc)
    doc = _doc("rayjob-sweep.yaml")
    doc["spec"]["runtimeEnvYAML"] = "env_var: {A: b}\n"
    with pytest.raises(kuberay.ManifestError, match="env_var"):
        kuberay.validate_document(doc)


def test_entrypoints_are_commands_zcpipe_accepts():
    from zcpipe.cli import app

    group = typer.main.get_command(app)
    for job in ("rayjob-ingest.yaml", "rayjob-sweep.yaml"):
        argv = shlex.split(_doc(job)["spec"]["entrypoint"])
        assert argv[0] == "zcpipe" and "--ray-address" in argv and any(a.startswith("s3://") for a in argv)
        command = group.get_command(None, argv[1])
        command.make_context(argv[1], argv[2:])  # click's parser: an unknown option raises here
        with pytest.raises(Exception, match="No such option"):
            command.make_context(argv[1], [*argv[2:], "--gpu", "1"])


def test_images_pin_the_tested_torch_and_ray():
    import ray

    project = (ROOT / "pyproject.toml").read_text()
    pin = re.search(r'"torch==([\d.]+)"', project)[1]
    ray_pin = re.search(r'"ray\[[\w,]+\]==([\d.]+)"', project)[1]
    # A cluster whose nodes run another Ray than the driver refuses to connect.
    assert ray.__version__ == ray_pin
    for name, flavour in (("Dockerfile", "cpu"), ("Dockerfile.cuda", "cu")):
        text = (DEPLOY / name).read_text()
        assert f"torch=={pin}" in text and f"whl/{flavour}" in text
        assert f"rayproject/ray:{ray_pin}-py311" in text and f"ray[tune]=={ray_pin}" in text


def test_the_cuda_image_has_kernels_for_hopper_and_blackwell_and_a_smoke_test():
    import subprocess
    import sys

    text = (DEPLOY / "Dockerfile.cuda").read_text()
    cuda = int(re.search(r"download\.pytorch\.org/whl/cu(\d+)", text)[1])
    assert cuda >= 128  # sm_100/sm_120 (Blackwell) kernels start with torch's CUDA 12.8 builds
    assert "python -m zcpipe.workers.selftest" in text
    r = subprocess.run([sys.executable, "-m", "zcpipe.workers.selftest", "--device", "cpu"],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0 and "all proxies agree with the CPU" in r.stdout, r.stdout + r.stderr


def test_the_mps_sharing_config_is_the_device_plugins_format_and_the_docs_use_its_names():
    doc = yaml.safe_load((DEPLOY / "nvidia-mps" / "device-plugin-config.yaml").read_text())
    assert doc["kind"] == "ConfigMap"
    plugin = yaml.safe_load(doc["data"]["mps"])
    assert plugin["version"] == "v1"
    (resource,) = plugin["sharing"]["mps"]["resources"]
    assert resource["name"] == "nvidia.com/gpu" and int(resource["replicas"]) > 1
    docs = (ROOT / "docs" / "clusters.md").read_text()
    assert f"config.name={doc['metadata']['name']}" in docs and "config.default=mps" in docs
    assert f"as {resource['replicas']} `nvidia.com/gpu` replicas" in docs
