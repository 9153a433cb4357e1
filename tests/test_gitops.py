"""GitOps: Argo CD's health check for the four kinds, and the samples as a kustomization."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from lupa.lua51 import LuaRuntime  # Argo CD runs gopher-lua, a Lua 5.1

from litelong_operator.status import Observed, status_patch

from .conftest import REPO, SAMPLES

SCRIPT = REPO / "charts" / "litelong" / "files" / "argocd-health.lua"
KINDS = ("TopicDebate", "BM25Index", "SynthesisRun", "TrainingJob")


def health(resource: dict[str, Any]) -> dict[str, str]:
    """Run the script the way Argo CD does: `obj` in scope, a table `{status, message}` back."""
    lua = LuaRuntime(unpack_returned_tuples=True)
    check = lua.eval("function(obj) " + SCRIPT.read_text() + " end")
    return dict(check(lua.table_from(resource, recursive=True)))


def resource(phase: str, reason: str, message: str, **progress: Any) -> dict[str, Any]:
    """A resource whose status the operator's own status code wrote."""
    status = status_patch(
        Observed(phase, reason, message, **progress),
        spec_hash="0123456789ab",
        outputs={},
        previous={},
        generation=3,
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return {"metadata": {"name": "science", "generation": 3}, "status": status}


@pytest.mark.parametrize(
    ("phase", "reason", "message", "expected"),
    [
        ("Succeeded", "Committed", "Committed 4 topics", "Healthy"),
        ("Failed", "JobFailed", "shard 2: corpus unreadable", "Degraded"),
        ("Waiting", "RefsNotReady", "waiting for BM25Index wiki-sample", "Suspended"),
        ("Running", "JobRunning", "2 of 4 shards done", "Progressing"),
        ("Pending", "Created", "Job created", "Progressing"),
    ],
)
def test_health_follows_the_conditions_the_operator_writes(
    phase: str, reason: str, message: str, expected: str
) -> None:
    assert health(resource(phase, reason, message)) == {"status": expected, "message": message}


def test_progress_shows_in_the_message() -> None:
    running = resource("Running", "JobRunning", "indexing", done=2, total=4)
    assert health(running) == {"status": "Progressing", "message": "indexing (2/4)"}


def test_a_spec_the_operator_has_not_seen_is_progressing_even_if_ready() -> None:
    edited = resource("Succeeded", "Committed", "done")
    edited["metadata"]["generation"] = 4  # a Git commit changed the spec; status is stale
    assert health(edited)["status"] == "Progressing"
    assert "generation 4" in health(edited)["message"]
    assert health({"metadata": {"generation": 1}})["status"] == "Progressing"


def test_argocd_cm_snippet_carries_the_script_for_each_kind() -> None:
    snippet = yaml.safe_load((REPO / "manifests" / "gitops" / "argocd-cm-health.yaml").read_text())
    script = SCRIPT.read_text()
    assert snippet["data"] == {
        f"resource.customizations.health.litelong.io_{k}": script for k in KINDS
    }


def test_the_samples_kustomization_lists_every_sample() -> None:
    kustomization = yaml.safe_load((REPO / "manifests/samples/kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in SAMPLES)


@pytest.mark.parametrize("name", ["argocd-application.yaml", "flux-kustomization.yaml"])
def test_gitops_sources_point_at_the_samples(name: str) -> None:
    documents = list(yaml.safe_load_all((REPO / "manifests" / "gitops" / name).read_text()))
    paths = [d["spec"].get("path") or d["spec"].get("source", {}).get("path") for d in documents]
    assert any(p and p.strip("./") == "manifests/samples" for p in paths)
