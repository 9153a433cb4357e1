"""images/podman_pod.py: the stage pod the operator renders, as the flags podman runs it with.

images/check.sh runs the worker image with these flags in CI; these tests pin that the flags
carry the rendered pod's user, read-only root, mounts and command, and that a pod field the
emulation cannot honour stops the check instead of being dropped.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from .conftest import REPO

SAMPLES = REPO / "manifests" / "samples"


def load_podman_pod() -> ModuleType:
    spec = importlib.util.spec_from_file_location("podman_pod", REPO / "images" / "podman_pod.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


podman_pod = load_podman_pod()


def flag_values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == flag]


def test_the_worker_runs_the_rendered_command_as_uid_10001_with_a_read_only_root(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    config_map, job = podman_pod.stage_job(SAMPLES / "bm25index.yaml", "BM25Index", "worker:ci")
    args = podman_pod.podman_run_args(config_map, job, store=store, work=tmp_path / "pod")

    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    image_at = args.index("worker:ci")
    assert args[image_at - 2 : image_at] == ["--entrypoint", command[0]]
    assert args[image_at + 1 :] == command[1:]
    assert flag_values(args, "--user") == ["10001:10001"]
    assert "--read-only" in args and "--read-only-tmpfs=false" in args
    assert flag_values(args, "--cap-drop") == ["ALL"]
    assert flag_values(args, "--security-opt") == ["no-new-privileges"]
    assert flag_values(args, "--network") == ["none"]
    volumes = flag_values(args, "--volume")
    assert f"{store}:/var/lib/litelong:rw" in volumes
    spec_volume = next(v for v in volumes if ":/etc/litelong:" in v)
    assert spec_volume.endswith(":ro")
    spec_file = Path(spec_volume.split(":")[0]) / "resource.yaml"
    assert yaml.safe_load(spec_file.read_text())["metadata"]["name"] == "wiki-sample"
    env = flag_values(args, "--env")
    assert "LITELONG_STORE=file:///var/lib/litelong" in env
    assert "JOB_COMPLETION_INDEX=0" in env  # what an Indexed Job's controller sets
    if os.geteuid() == 0:  # the kubelet's fsGroup: the store is the pod group's to write
        assert store.stat().st_gid == 10001 and store.stat().st_mode & 0o070 == 0o070


def test_a_pod_reading_secrets_is_refused_not_run_without_them(tmp_path: Path) -> None:
    document = yaml.safe_load((SAMPLES / "topicdebate.yaml").read_text())
    document["spec"]["judge"]["endpoint"] = {
        "baseURL": "http://vllm-judge:8000/v1",
        "model": "judge",
        "apiKeySecretRef": {"name": "llm-keys", "key": "judge"},
    }
    manifest = tmp_path / "debate.yaml"
    manifest.write_text(yaml.safe_dump(document))
    store = tmp_path / "store"
    store.mkdir()
    config_map, job = podman_pod.stage_job(manifest, "TopicDebate", "worker:ci")
    with pytest.raises(podman_pod.Unsupported, match="only literal values"):
        podman_pod.podman_run_args(config_map, job, store=store, work=tmp_path / "pod")


def test_run_as_non_root_without_a_user_is_refused_as_the_kubelet_would() -> None:
    with pytest.raises(podman_pod.Unsupported, match="runAsNonRoot"):
        podman_pod.security_args({"runAsNonRoot": True}, {})
    assert podman_pod.security_args({"runAsNonRoot": True, "runAsUser": 10001}, {})[:2] == [
        "--user",
        "10001",
    ]


def test_the_command_line_prints_one_argument_per_line_and_refuses_a_missing_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    store.mkdir()

    def main(kind: str, work: str) -> int:
        manifest = str(SAMPLES / "synthesisrun.yaml")
        options = ["--image", "w", "--store", str(store), "--work", str(tmp_path / work)]
        code: int = podman_pod.main([*options, manifest, kind])
        return code

    assert main("SynthesisRun", "ok") == 0
    lines = capsys.readouterr().out.splitlines()
    command = ["stage", "SynthesisRun", "--spec", "/etc/litelong/resource.yaml", "--of", "1"]
    assert lines[-7:] == ["w", *command]
    assert main("TrainingJob", "refused") == 2
    assert "holds no TrainingJob" in capsys.readouterr().err
