"""`litelong plan` against the run: the README's quickstart, and a run 10x larger.

Calibrates this machine (`--calibrate`'s probes), plans every resource before anything runs,
then runs each stage (`run_shard` over all shards, timed, the report included) and prints the
estimated and measured wall time, CPU time (this process, all its threads) and committed bytes
side by side. On a shared machine the wall time of the same stage moves with the load of
others; CPU time moves far less. The SynthesisRun is planned
twice: before its inputs exist (topics as planned) and once they are committed (real topics,
real index queries), which is what `litelong plan` says when run between the stages.

    PYTHONPATH=. python bench/plan.py --scale 1 --llm-timeout 900
    PYTHONPATH=. python bench/plan.py --scale 10 --rule-topics   # corpora: ../shared/.../large

`--rule-topics` skips the debate: 16 x scale topics (what 4 subjects x topicsPerSubject 4 would
give) are committed by rule, one BISAC subject title each, for machines where the embedded LLM
cannot debate 10x the subjects in reasonable time; index and synthesis are planned and measured.
`--loopback-llm` debates instead against the loopback OpenAI-compatible server of
tests/test_plan.py (answers by rule after 0.2 s; run from the repository root): the debate's
plan is measured for a remote endpoint, in seconds rather than the embedded model's minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

from litelong.api import load_file, parse
from litelong.api.loading import AnyResource
from litelong.plan.planner import make_plan
from litelong.plan.probes import calibrate, commit_rule_topics
from litelong.stages import order_by_dependency, run_shard
from litelong.store import ArtifactStore

SAMPLES = Path(__file__).resolve().parent.parent / "manifests" / "samples"
QUICKSTART = ("topicdebate.yaml", "bm25index.yaml", "synthesisrun.yaml")
#: --scale 10: ten times the subjects, and corpus files holding ~10x the text of the sample
LARGE_FILES = ("manpages-00000.jsonl.zst", "religion-00000.jsonl.zst")
#: --loopback-llm: the models tests/test_debate_protocol.py's rules answer for
MODELS = ("model-a", "model-b", "model-j")


def resources_for(
    scale: int, corpora: Path, llm_timeout: float, llm_url: str | None = None
) -> list[AnyResource]:
    resources = [r for name in QUICKSTART for r in load_file(SAMPLES / name)]
    scaled = []
    for resource in resources:
        document = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
        document.pop("status", None)
        spec = document["spec"]
        if resource.kind == "TopicDebate":
            spec["taxonomy"]["maxSubjects"] *= scale
            for role, model in zip([*spec["debaters"], spec["judge"]], MODELS, strict=True):
                role["endpoint"]["timeoutSeconds"] = llm_timeout
                if llm_url:
                    role["endpoint"].update(baseURL=llm_url, model=model, maxRetries=0)
        elif resource.kind == "BM25Index" and scale > 1:
            spec["corpus"] = [
                {"uri": str(corpora / name), "format": "jsonl", "idField": "id"}
                for name in LARGE_FILES
            ]
        scaled.append(parse(document))
    return scaled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=1, choices=(1, 10))
    parser.add_argument("--corpora", type=Path, default=Path("../shared/data/corpora/large"))
    parser.add_argument("--llm-timeout", type=float, default=120.0, help="seconds per request")
    parser.add_argument("--rule-topics", action="store_true", help="no debate: topics by rule")
    parser.add_argument(
        "--loopback-llm", action="store_true", help="debate against the tests' loopback server"
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = None
        if args.loopback_llm:
            from tests.adversary_llm import AdversaryLLM, Delay
            from tests.test_debate_protocol import Models

            models = Models()
            server = AdversaryLLM(respond=lambda body: Delay(0.2, models(body)))
            url = stack.enter_context(server).base_url
        measure(args, resources_for(args.scale, args.corpora, args.llm_timeout, url))


def measure(args: argparse.Namespace, resources: list[AnyResource]) -> None:
    if args.rule_topics:
        resources = [r for r in resources if r.kind != "TopicDebate"]
    resources = order_by_dependency(resources)
    with tempfile.TemporaryDirectory() as folder:
        store = ArtifactStore(f"file://{folder}")
        if args.rule_topics:
            commit_rule_topics(store, 16 * args.scale, "science")
            print(f"{16 * args.scale} topics committed by rule")
        started, cpu = time.perf_counter(), time.process_time()
        calibration = calibrate(resources, log=lambda line: print(f"calibrate: {line}"))
        print(
            f"calibration took {time.perf_counter() - started:.1f} s "
            f"({time.process_time() - cpu:.1f} CPU s)"
        )
        before = make_plan(resources, store, calibration)
        rows = []
        for resource in resources:
            planned = [before.find(resource.kind, resource.name)]
            if resource.kind == "SynthesisRun":
                planned.append(make_plan([resource], store, calibration).estimates[0])
            of = resource.spec.parallelism
            started, cpu = time.perf_counter(), time.process_time()
            manifest = None
            for shard in range(of):
                manifest = run_shard(resource, store, shard, of).manifest or manifest
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu
            assert manifest is not None
            for label, estimate in zip(("before", "inputs committed"), planned, strict=False):
                assert estimate is not None
                rows.append(
                    (
                        f"{resource.kind}/{resource.name}",
                        label,
                        estimate.wall_seconds,
                        seconds,
                        estimate.cpu_hours * 3600,
                        cpu,
                        estimate.bytes,
                        manifest.size,
                    )
                )
        print(f"\nscale {args.scale}")
        print(
            "| stage | planned | est. wall s | wall s | ratio | est. CPU s | CPU s | ratio "
            "| est. bytes | bytes | ratio |"
        )
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, label, est_s, s, est_c, c, est_b, b in rows:
            print(
                f"| {name} | {label} | {est_s:,.1f} | {s:,.1f} | {est_s / s:.2f} | "
                f"{est_c:,.1f} | {c:,.1f} | {est_c / c:.2f} | {est_b:,} | {b:,} | {est_b / b:.2f} |"
            )


if __name__ == "__main__":
    main()
