"""Status as users read it (`kubectl get`, Argo CD): conditions, phase, progress from children."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from litelong_operator.status import (
    Observed,
    job_state,
    manticore_state,
    pytorch_job_state,
    replacing,
    same_status,
    status_patch,
    termination_message,
    with_training_metrics,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 2, tzinfo=UTC)


def job(**status: object) -> dict[str, object]:
    return {"metadata": {"name": "run-abc"}, "spec": {"completions": 4}, "status": status}


def test_a_running_job_reports_shards_done_of_total() -> None:
    observed = job_state(job(succeeded=3, active=1))
    assert (observed.phase, observed.done, observed.total) == ("Running", 3, 4)
    assert observed.message == "Job run-abc: 3/4 shards done, 1 running"


def test_a_failed_job_carries_the_controllers_reason_and_the_pods_last_words() -> None:
    failed = job(
        conditions=[
            {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
            }
        ]
    )
    observed = job_state(failed, "Traceback ...\nEndpointError: 503")
    assert observed.phase == "Failed" and observed.reason == "BackoffLimitExceeded"
    assert "backoff limit" in observed.message and observed.message.endswith("EndpointError: 503")


def test_a_shard_that_used_up_its_retries_fails_the_resource_while_others_still_run() -> None:
    """A Job without `maxFailedIndexes` (rendered before it, or kept running by the server)
    fails only when every shard is done; the output is lost as soon as one shard is."""
    lost = job(failedIndexes="1", failed=4, active=3)
    lost["spec"] = {"completions": 4, "backoffLimitPerIndex": 3}
    observed = job_state(lost, "error: corpus file /data/x.jsonl: no such file")
    assert (observed.phase, observed.reason) == ("Failed", "FailedIndexes")
    assert "shard(s) 1 used up their retries" in observed.message
    assert observed.message.endswith("no such file")


def test_a_running_job_with_failed_pods_says_so_with_the_latest_last_words() -> None:
    observed = job_state(job(succeeded=1, failed=2, active=3), "EndpointError: 503")
    assert (observed.phase, observed.reason) == ("Running", "RetryingFailedPods")
    assert observed.message.startswith("Job run-abc: 1/4 shards done, 3 running; 2 pod(s) failed")
    assert "fails after 6 retries in all" in observed.message
    assert observed.message.endswith("last words of the latest failed pod: EndpointError: 503")


def test_a_condition_that_is_not_true_decides_nothing() -> None:
    assert job_state(job(conditions=[{"type": "Complete", "status": "False"}])).phase == "Running"


def test_pytorchjob_phases() -> None:
    running = {
        "metadata": {"name": "t"},
        "status": {"conditions": [{"type": "Running", "status": "True"}]},
    }
    assert pytorch_job_state(running).reason == "PyTorchJobRunning"
    done = {
        "metadata": {"name": "t"},
        "status": {"conditions": [{"type": "Succeeded", "status": "True"}]},
    }
    assert pytorch_job_state(done).phase == "Succeeded"


def test_manticore_gates_loading_until_every_pod_is_ready() -> None:
    assert manticore_state(None, 2) is not None
    assert manticore_state({"status": {"readyReplicas": 1}}, 2).message.startswith("1/2")  # type: ignore[union-attr]
    assert manticore_state({"status": {"readyReplicas": 2}}, 2) is None


def test_exactly_one_condition_is_true_and_transition_times_survive_unchanged_status() -> None:
    running = status_patch(
        Observed("Running", "JobRunning", "1/4", 1, 4),
        spec_hash="h",
        outputs={},
        previous={},
        generation=3,
        now=T0,
    )
    assert [c["type"] for c in running["conditions"] if c["status"] == "True"] == ["Progressing"]
    assert running["observedGeneration"] == 3 and running["progress"]["summary"] == "1/4"
    later = status_patch(
        Observed("Running", "JobRunning", "2/4", 2, 4),
        spec_hash="h",
        outputs={},
        previous=running,
        generation=3,
        now=T1,
    )
    progressing = next(c for c in later["conditions"] if c["type"] == "Progressing")
    assert progressing["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    done = status_patch(
        Observed("Succeeded", "Committed", "outputs at x"),
        spec_hash="h",
        outputs={"uri": "x"},
        previous=later,
        generation=3,
        now=T1,
    )
    ready = next(c for c in done["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["lastTransitionTime"]) == ("True", "2026-01-02T00:00:00Z")


def test_a_status_differing_only_in_times_is_not_rewritten() -> None:
    observed = Observed("Waiting", "RefNotReady", "waiting for TopicDebate/x")
    first = status_patch(observed, spec_hash="h", outputs={}, previous={}, generation=None, now=T0)
    second = status_patch(observed, spec_hash="h", outputs={}, previous={}, generation=None, now=T1)
    assert same_status(second, first)
    assert not same_status(
        status_patch(
            Observed("Running", "JobRunning", ""),
            spec_hash="h",
            outputs={},
            previous={},
            generation=None,
        ),
        first,
    )


def test_termination_message_is_the_newest_failure() -> None:
    def pod(at: str, message: str, code: int = 1) -> dict[str, object]:
        terminated = {"exitCode": code, "message": message, "finishedAt": at}
        return {"status": {"containerStatuses": [{"state": {"terminated": terminated}}]}}

    pods = [
        pod("2026-01-01T00:00:01Z", "old"),
        pod("2026-01-01T00:00:09Z", "new"),
        pod("2026-01-01T00:00:10Z", "ok", 0),
    ]
    assert termination_message(pods) == "new"
    assert termination_message([]) == ""


def test_a_training_run_reports_step_loss_throughput_and_eta_from_its_metrics() -> None:
    rows = [
        {"step": step, "loss": 3.0 - step / 10, "seconds": 2.0 if step > 1 else 30.0}
        for step in range(1, 22)
    ]
    rows[-1]["tokens_per_s"] = 65536.04
    running = pytorch_job_state({"metadata": {"name": "tj"}, "status": {}})
    text = "".join(json.dumps(row) + "\n" for row in rows)
    observed = with_training_metrics(running, text, steps=100)
    assert (observed.done, observed.total, observed.unit) == (21, 100, "steps")
    # the last 20 steps' pace (the slow first step left out): 79 steps x 2 s
    assert observed.training == {
        "step": 21,
        "loss": rows[-1]["loss"],
        "tokensPerSecond": 65536.0,
        "etaSeconds": 158,
    }
    status = status_patch(observed, spec_hash="h", outputs={}, previous={}, generation=1, now=T0)
    assert status["training"]["step"] == 21 and status["progress"]["summary"] == "21/100"
    assert with_training_metrics(running, "", steps=100) == running, "nothing written yet"


def test_the_status_patch_replaces_every_key_of_the_last_status() -> None:
    """A merge patch would keep `samples` of the output before a spec edit; this one nulls it."""
    committed = {
        "phase": "Succeeded",
        "outputs": {"uri": "file:///s/old", "samples": 40, "tokens": 9},
        "progress": {"done": 1, "total": 1, "unit": "shards", "summary": "1/1"},
        "inputs": {"BM25Index/i": "aaa"},
    }
    running = {"phase": "Running", "outputs": {"uri": "file:///s/new"}, "progress": {"done": 0}}
    patch = replacing(running, committed)
    assert patch["outputs"] == {"uri": "file:///s/new", "samples": None, "tokens": None}
    assert patch["progress"] == {"done": 0, "total": None, "unit": None, "summary": None}
    assert patch["inputs"] is None


def test_a_deleted_ref_is_a_condition_not_a_phase() -> None:
    observed = Observed("Succeeded", "Committed", "outputs at file:///s", 3, 3)
    status = status_patch(
        observed,
        spec_hash="h",
        outputs={"uri": "file:///s"},
        previous={},
        generation=None,
        inputs={"BM25Index/i": "aaa"},
        absent_refs=["BM25Index/i"],
    )
    refs = next(c for c in status["conditions"] if c["type"] == "RefsPresent")
    assert (status["phase"], refs["status"], refs["reason"]) == (
        "Succeeded",
        "False",
        "RefNotFound",
    )
    assert status["progress"]["summary"] == "3/3" and status["inputs"] == {"BM25Index/i": "aaa"}
