"""Run a stage pod the operator renders with podman, as a kubelet would run it.

images/check.sh uses this to run the worker image on the quickstart: the command, environment,
volumes, user and security context all come from the operator's own rendering of the Job
(`litelong_operator.render`), so the image is checked against exactly what a cluster runs, not
against a hand-written copy. What Kubernetes does that podman does not, it emulates here:
the configMap volume becomes a read-only folder holding its keys, an emptyDir a fresh folder,
the store claim a host folder given to the pod's fsGroup, and an Indexed Job's pod gets
JOB_COMPLETION_INDEX. A pod field this cannot honour is an error, never silently dropped.

    python images/podman_pod.py --image IMAGE --store DIR --work DIR MANIFEST KIND

prints the arguments of `podman run`, one per line.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path
from typing import Any

from litelong.api import load_file
from litelong_operator.config import Images, OperatorConfig
from litelong_operator.render import Owner, render

Manifest = dict[str, Any]

#: pod and container fields this emulation honours; anything else set in the rendered pod
#: would change behaviour unseen, so it stops the check instead
POD_FIELDS = {
    "restartPolicy",
    "serviceAccountName",
    "automountServiceAccountToken",
    "securityContext",
    "containers",
    "volumes",
}
CONTAINER_FIELDS = {
    "name",
    "image",
    "command",
    "env",
    "volumeMounts",
    "securityContext",
    "terminationMessagePolicy",
}


class Unsupported(ValueError):
    """The rendered pod asks for something podman cannot be made to do here."""


def stage_job(manifest: Path, kind: str, image: str) -> tuple[Manifest, Manifest]:
    """(spec ConfigMap, Job) the operator renders for the first `kind` resource in the file,
    with the default operator config (the store claim) and `image` as the worker image."""
    resources = [r for r in load_file(manifest) if r.kind == kind]
    if not resources:
        raise Unsupported(f"{manifest} holds no {kind}")
    owner = Owner(resource=resources[0], uid="podman", namespace="default")
    children = render(owner, OperatorConfig(images=Images(worker=image)))
    config_map = next(c for c in children if c["kind"] == "ConfigMap")
    job = next(c for c in children if c["kind"] == "Job")
    return config_map, job


def give_to_group(folder: Path, gid: int) -> None:
    """What the kubelet does to a volume for the pod's fsGroup: group-owned, group-writable,
    new files inheriting the group."""
    for root, dirs, files in os.walk(folder):
        os.chown(root, -1, gid)
        os.chmod(root, os.stat(root).st_mode | stat.S_IRWXG | stat.S_ISGID)
        for name in files:
            path = os.path.join(root, name)
            os.chown(path, -1, gid)
            os.chmod(path, os.stat(path).st_mode | stat.S_IRGRP | stat.S_IWGRP)
        for name in dirs:
            os.chown(os.path.join(root, name), -1, gid)


def volume_sources(
    pod: Manifest, config_map: Manifest, store: Path, work: Path, fs_group: int | None
) -> dict[str, tuple[Path, bool]]:
    """Volume name -> (host folder, read-only), made the way the kubelet makes each kind."""
    sources: dict[str, tuple[Path, bool]] = {}
    for volume in pod["volumes"]:
        name = volume["name"]
        if "configMap" in volume:
            if volume["configMap"]["name"] != config_map["metadata"]["name"]:
                raise Unsupported(f"volume {name}: configMap {volume['configMap']['name']}")
            folder = work / name
            folder.mkdir(parents=True)
            for key, text in config_map["data"].items():
                (folder / key).write_text(text)
                (folder / key).chmod(0o644)
            folder.chmod(0o755)
            sources[name] = (folder, True)
        elif "emptyDir" in volume:
            folder = work / name
            folder.mkdir(parents=True)
            folder.chmod(0o777)  # the kubelet's emptyDir mode
            sources[name] = (folder, False)
        elif "persistentVolumeClaim" in volume:
            if fs_group is not None:
                give_to_group(store, fs_group)
            sources[name] = (store, False)
        else:
            raise Unsupported(f"volume {name}: {sorted(volume)}")
    return sources


def security_args(pod_security: Manifest, container_security: Manifest) -> list[str]:
    """The pod's and container's securityContext as podman flags; refuses what it cannot map."""
    merged = {**pod_security, **container_security}
    user, group = merged.get("runAsUser"), merged.get("runAsGroup")
    if merged.get("runAsNonRoot") and not user:
        raise Unsupported("runAsNonRoot without a non-zero runAsUser: the kubelet would refuse")
    args: list[str] = []
    if user is not None:
        args += ["--user", f"{user}:{group}" if group is not None else str(user)]
    if merged.get("fsGroup") is not None:
        args += ["--group-add", str(merged["fsGroup"])]
    if merged.get("readOnlyRootFilesystem"):
        args += ["--read-only", "--read-only-tmpfs=false"]  # no tmpfs the pod would not have
    if merged.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    for capability in merged.get("capabilities", {}).get("drop", []):
        args += ["--cap-drop", capability]
    if merged.get("capabilities", {}).get("add"):
        raise Unsupported("capabilities.add")
    profile = merged.get("seccompProfile", {}).get("type", "RuntimeDefault")
    if profile != "RuntimeDefault":  # podman's default profile is the runtime default
        raise Unsupported(f"seccompProfile {profile}")
    return args


def podman_run_args(
    config_map: Manifest, job: Manifest, *, store: Path, work: Path, shard: int = 0
) -> list[str]:
    """Arguments after `podman run` for shard `shard` of the Job's pod; prepares the volumes
    under `work` and hands `store` to the pod's fsGroup."""
    pod = job["spec"]["template"]["spec"]
    if extra := set(pod) - POD_FIELDS:
        raise Unsupported(f"pod fields {sorted(extra)}")
    (container,) = pod["containers"]
    if extra := set(container) - CONTAINER_FIELDS:
        raise Unsupported(f"container fields {sorted(extra)}")
    pod_security = pod.get("securityContext", {})
    sources = volume_sources(pod, config_map, store, work, pod_security.get("fsGroup"))
    args = ["--rm", "--network", "none"]
    args += security_args(pod_security, container.get("securityContext", {}))
    for mount in container["volumeMounts"]:
        folder, read_only = sources[mount["name"]]
        options = "ro" if read_only or mount.get("readOnly") else "rw"
        args += ["--volume", f"{folder}:{mount['mountPath']}:{options}"]
    environment = list(container.get("env", []))
    if job["spec"].get("completionMode") == "Indexed":
        environment.append({"name": "JOB_COMPLETION_INDEX", "value": str(shard)})
    for variable in environment:
        if "value" not in variable:
            raise Unsupported(f"env {variable['name']}: only literal values (no Secrets here)")
        args += ["--env", f"{variable['name']}={variable['value']}"]
    command = container["command"]  # a pod's command replaces the image's entrypoint and CMD
    return [*args, "--entrypoint", command[0], container["image"], *command[1:]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("kind")
    parser.add_argument("--image", required=True)
    parser.add_argument("--store", type=Path, required=True, help="host folder of the claim")
    parser.add_argument("--work", type=Path, required=True, help="new folder for the volumes")
    options = parser.parse_args(argv)
    try:
        config_map, job = stage_job(options.manifest, options.kind, options.image)
        args = podman_run_args(config_map, job, store=options.store, work=options.work)
    except Unsupported as exc:
        print(f"podman_pod: {exc}", file=sys.stderr)
        return 2
    print("\n".join(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
