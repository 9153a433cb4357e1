"""Managed Manticore as the operator renders it: a config searchd 10.1.0 starts with on an
empty volume, claims that follow their index, and spec fields that are either rendered or
refused with their path."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from litelong.api import InvalidManifest, load_text
from litelong_operator.config import OperatorConfig
from litelong_operator.render import owner_of, render
from litelong_operator.render.manticore import (
    API_PORT,
    HTTP_PORT,
    MANTICORE_CONF,
    SQL_PORT,
)

from .conftest import REPO


def rt_mode_problems(conf: str, mounted: set[str]) -> list[str]:
    """What in a manticore.conf breaks Manticore's documented real-time-mode rules (manual:
    "Creating a table" / RT mode, "Logging" / binary logging, "Server settings" / listen), or
    the pod it runs in (`mounted`: writable folders); [] when searchd can start on an empty
    volume."""
    sections = re.findall(r"^\s*(\w+)(?:\s+\w+)?\s*\{", conf, flags=re.MULTILINE)
    settings: dict[str, list[str]] = {}
    for key, value in re.findall(r"^\s*(\w+)\s*=[ \t]*(.*?)\s*$", conf, flags=re.MULTILINE):
        settings.setdefault(key, []).append(value)
    problems = [
        f"a `{name}` section: RT mode defines tables by SQL only"
        for name in sections
        if name != "searchd"
    ]
    data_dir = (settings.get("data_dir") or [""])[0]
    if not data_dir:
        problems.append("no data_dir: that is plain mode, where CREATE TABLE is refused")
    elif data_dir not in mounted:
        problems.append(f"data_dir {data_dir} is not on a mounted volume")
    for binlog in settings.get("binlog_path", []):
        if binlog and binlog != data_dir:
            problems.append(
                f"binlog_path = {binlog}: searchd does not create it and stops at start on a "
                "fresh volume; leave it out (RT mode uses <data_dir>/binlog)"
            )
    listeners = settings.get("listen", [])
    for port, protocol in ((HTTP_PORT, "http"), (SQL_PORT, "mysql41"), (API_PORT, "")):
        wanted = f"{port}:{protocol}" if protocol else str(port)
        if wanted not in listeners:
            problems.append(f"no `listen = {wanted}`")
    pid_file = (settings.get("pid_file") or [""])[0]
    if pid_file.rsplit("/", 1)[0] not in mounted:
        problems.append("pid_file must be set, in a mounted writable folder")
    return problems


def managed(**manticore: Any) -> dict[str, Any]:
    document = yaml.safe_load((REPO / "manifests" / "samples" / "bm25index.yaml").read_text())
    document = copy.deepcopy(document)
    document["metadata"].update(namespace="ml", uid="0d9c6e2a-4f1b-4c55-9a7e-2f3c1d8b9e10")
    document["spec"]["chunks"] = {"enabled": False}
    document["spec"]["backend"] = {
        "type": "manticore",
        "manticore": {"mode": "managed", "shards": 2, **manticore},
    }
    return document


def cluster(**manticore: Any) -> dict[str, dict[str, Any]]:
    children = render(owner_of(managed(**manticore)), OperatorConfig())
    return {child["kind"]: child for child in children if child["kind"] != "Job"}


def mounted_folders(statefulset: dict[str, Any]) -> set[str]:
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    return {mount["mountPath"] for mount in container["volumeMounts"] if not mount.get("readOnly")}


def test_the_rendered_config_keeps_manticores_rt_mode_rules() -> None:
    children = cluster()
    conf = children["ConfigMap"]["data"]["manticore.conf"]
    assert conf == MANTICORE_CONF
    assert rt_mode_problems(conf, mounted_folders(children["StatefulSet"])) == []


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            lambda c: c.replace(
                "    buddy_path", "    binlog_path = /var/lib/manticore/binlog\n    buddy_path"
            ),
            "binlog_path",
        ),
        (lambda c: c.replace("    data_dir = /var/lib/manticore\n", ""), "no data_dir"),
        (lambda c: c + "table t {\n    type = rt\n}\n", "`table` section"),
        (lambda c: c.replace("9308:http", "9318:http"), "listen = 9308:http"),
        (lambda c: c.replace("/var/run/manticore/", "/run/"), "pid_file"),
    ],
    ids=["binlog-outside-data-dir", "no-data-dir", "table-in-config", "no-http", "pid-file"],
)
def test_the_rt_mode_check_refuses_what_stops_searchd(edit: Any, problem: str) -> None:
    mounted = mounted_folders(cluster()["StatefulSet"])
    problems = rt_mode_problems(edit(MANTICORE_CONF), mounted)
    assert any(problem in found for found in problems), problems


def test_the_charts_default_manticore_image_is_the_operators_pinned_one() -> None:
    values = yaml.safe_load((REPO / "charts" / "litelong" / "values.yaml").read_text())
    image = values["images"]["manticore"]
    assert f"{image['repository']}:{image['tag']}" == OperatorConfig().images.manticore
    assert OperatorConfig().images.manticore.endswith(":10.1.0")


def test_claims_are_deleted_with_their_statefulset_by_default_and_kept_when_asked() -> None:
    statefulset = cluster()["StatefulSet"]
    policy = statefulset["spec"]["persistentVolumeClaimRetentionPolicy"]
    assert policy == {"whenDeleted": "Delete", "whenScaled": "Delete"}
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert (
        claim["metadata"]["labels"]["litelong.io/spec-hash"]
        == (statefulset["metadata"]["labels"]["litelong.io/spec-hash"])
    )
    retained = managed(storage={"retention": "Retain"})
    assert owner_of(retained).spec_hash == owner_of(managed()).spec_hash  # no reload for it
    kept = cluster(storage={"retention": "Retain"})["StatefulSet"]
    assert kept["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }


def test_replicas_are_refused_with_their_field_path() -> None:
    text = yaml.safe_dump(managed(replicas=2))
    with pytest.raises(InvalidManifest, match=r"spec\.backend\.manticore\.replicas"):
        load_text(text)


def test_a_manticore_index_asking_for_chunks_is_refused_at_validation() -> None:
    document = managed()
    document["spec"]["chunks"] = {"enabled": True}
    with pytest.raises(InvalidManifest, match=r"chunks\.enabled.*tantivy"):
        load_text(yaml.safe_dump(document))
