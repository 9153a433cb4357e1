"""Does LiteLong data help? SmolLM2-135M continued-pretrained to 32K at equal tokens on four
arms made from one corpus (base: no training; standard; litelong; nextlong), then `litelong
eval` on each. The papers' claim (Llama-3-8B at 128K, HELMET + RULER): LiteLong 61.90,
NExtLong 62.58, standard concatenation 52.85.

Three steps, because the GPU machine is bare, offline and takes 64 MiB per command:

    python bench/data_quality.py prepare /work/shared/data/corpora/large --work bench-dq  # CPU box
    python bench/data_quality.py run --work bench-dq --out results/                        # GPU
    python bench/data_quality.py table results/*.json                                      # here

`prepare` runs the real stages: a BM25Index (tantivy) over the corpus without its `history`
family, which is held out for perplexity by position; a TopicDebate whose topics are written
here from BISAC subjects that fit the corpus (a debate on the embedded 135M model is too slow
and too weak for 24 topics: bench/debate.py measures it on its own); three SynthesisRuns
(modes standard, litelong, nextlong) of 32,768-token MDS samples, the same topics and size. It
also writes the eval inputs the GPU machine cannot make offline without tantivy: the topical
haystack's documents (retrieved here for one topic) and the held-out long documents.
`run` trains each arm for the same number of 32K steps (equal tokens), per seed, with the real
training loop, and evaluates every model with the same `litelong.eval` code the CLI runs.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

ARMS = ("standard", "litelong", "nextlong")
LENGTH = 32_768

#: (BISAC code, heading, topic, query): subjects this technical/reference corpus covers.
TOPICS = [
    ("COM051360", "Computers", "Python programming", "python module function class"),
    ("COM051010", "Computers", "C++ standard library", "c++ std template container iterator"),
    ("COM021040", "Computers", "SQL databases", "sql table query index postgresql sqlite"),
    ("COM051000", "Computers", "Emacs editing", "emacs buffer window command key"),
    ("COM046000", "Computers", "Unix shell commands", "shell command file option directory"),
    ("COM043000", "Computers", "Network services", "server mail dns http configuration"),
    ("COM051200", "Computers", "Version control with git", "git commit branch merge repository"),
    ("COM051440", "Computers", "Rust and Haskell", "rust haskell type trait compiler"),
    ("COM051280", "Computers", "JavaScript and Node.js", "node javascript module stream buffer"),
    ("COM062000", "Computers", "Data science in Python", "pandas dataframe numpy array sklearn"),
    ("COM051300", "Computers", "Perl programming", "perl regular expression hash script"),
    ("COM051310", "Computers", "Lisp and Scheme", "racket scheme lisp lambda procedure"),
    ("MAT002000", "Mathematics", "Symbolic algebra", "sympy maxima polynomial matrix equation"),
    ("MAT029000", "Mathematics", "Statistics software", "statistics distribution regression r"),
    ("SCI004000", "Science", "Astronomy software", "astropy coordinates time units"),
    ("MUS037000", "Music", "Music notation", "lilypond note staff score"),
    ("COM012000", "Computers", "Image editing", "gimp layer image tool"),
    ("BUS001000", "Business", "Accounting software", "gnucash account transaction"),
    ("REL006000", "Religion", "Biblical commentary", "lord god israel christ commentary"),
    ("REL006400", "Religion", "The Gospels", "jesus disciples gospel"),
    ("HIS037000", "History", "Countries and governments", "country government population"),
    ("TRV000000", "Travel", "World geography", "geography climate terrain border"),
    ("CKB000000", "Cooking", "Recipes", "recipe ingredients cook minutes"),
    ("LAN009000", "Language Arts", "English dictionary definitions", "definition noun verb"),
]
SAMPLES_PER_TOPIC = 7
HAYSTACK_TOPIC = "sql table query index postgresql sqlite"
HELD_OUT = "history"


def _resource(kind: str, name: str, spec: dict[str, Any]) -> Any:
    from litelong.api import parse

    return parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def prepare(args: argparse.Namespace) -> None:
    """Index, topics, the three arms' samples, and the eval inputs, under --work."""
    from litelong.stages import run_shard
    from litelong.store import ArtifactStore

    work: Path = args.work
    store = ArtifactStore(f"file://{(work / 'store').resolve()}")
    files = sorted(p for p in args.corpus.glob("*.jsonl.zst") if not p.name.startswith(HELD_OUT))
    index = _resource(
        "BM25Index",
        "large",
        {
            "corpus": [{"uri": str(p)} for p in files],
            "chunks": {"enabled": True, "chunkChars": 2048},  # mode nextlong's negatives
        },
    )
    started = time.monotonic()
    run_shard(index, store, 0, 1)
    print(f"index: {time.monotonic() - started:.0f} s", flush=True)
    debate = store.artifact("TopicDebate", "topics", "000000000000")
    if debate.committed_manifest() is None:
        with debate.staging(0, 1) as folder:
            rows = [
                {"subject_code": c, "heading": h, "subject": h, "topic": t, "query": q}
                for c, h, t, q in TOPICS
            ]
            (folder / "topics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            debate.commit_part(0, 1, folder, counts={"topics": len(rows)})
        debate.commit({}, 1)
    for mode in ARMS:
        started = time.monotonic()
        run = _resource(
            "SynthesisRun",
            mode,
            {
                "topicDebateRef": "topics",
                "indexRef": "large",
                "mode": mode,
                "targetTokens": LENGTH,
                "samplesPerTopic": SAMPLES_PER_TOPIC,
                "retrieval": {"topK": 1000},
                "output": {"format": "mds"},
            },
        )
        result = run_shard(run, store, 0, 1)
        assert result.manifest is not None
        print(f"{mode}: {result.manifest.counts} in {time.monotonic() - started:.0f} s", flush=True)
    _eval_inputs(store, args.corpus, work)


def _eval_inputs(store: Any, corpus: Path, work: Path) -> None:
    """JSONL files the GPU machine reads without tantivy or zstandard: the topical haystack
    (BM25 top 200 for one topic) and the held-out long documents (consecutive State of the
    Union addresses joined to at least 160K characters, about 40K tokens). The niah tasks use
    RULER's noise haystack."""
    from litelong.api.v1alpha1.bm25index import CorpusSource
    from litelong.eval.documents import read_texts, retrieve

    inputs = work / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    topical = retrieve(store, "large", HAYSTACK_TOPIC, 200)
    _jsonl(inputs / "topical.jsonl", topical)
    held_out = read_texts(CorpusSource(uri=str(corpus / f"{HELD_OUT}-*.jsonl.zst")))
    long_docs, current = [], ""
    for text in held_out:
        current = f"{current}\n\n{text}" if current else text
        if len(current) >= 160_000:
            long_docs.append(current)
            current = ""
    _jsonl(inputs / "long.jsonl", long_docs[:24])  # what fits the 64 MiB the GPU call carries
    print(f"eval inputs: {len(topical)} topical, {len(long_docs)} long documents", flush=True)


def _jsonl(path: Path, texts: list[str]) -> None:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))


def _evaluation(args: argparse.Namespace) -> dict[str, Any]:
    inputs = args.work / "inputs"
    filler = inputs / "haystack.jsonl"  # optional; absent: RULER's noise (what the runs used)
    return {
        "lengths": args.eval_lengths,
        "tasks": [
            "niah_single",
            "niah_multikey",
            "niah_multivalue",
            "niah_multiquery",
            "vt",
            "cwe",
            "topical",
        ],
        "samplesPerTask": args.samples,
        "seed": 0,
        "haystack": {"uri": str(filler)} if filler.is_file() else None,
        "topical": {"source": {"uri": str(inputs / "topical.jsonl")}, "documents": 200},
        "perplexity": {"uri": str(inputs / "long.jsonl")},
        "perplexityDocuments": args.perplexity_documents,
    }


def _job(args: argparse.Namespace, arm: str, seed: int) -> Any:
    return _resource(
        "TrainingJob",
        f"{arm}-s{seed}",
        {
            "synthesisRunRef": arm,
            "model": {"name": args.model},
            "contextLength": args.length,
            "steps": args.steps,
            "learningRate": args.lr,
            "warmupRatio": 0.1,
            "batchTokens": args.length,
            "checkpointEvery": args.steps,
            "seed": seed,
            "parallelism": {"nodes": 1, "gpusPerNode": 1, "contextParallel": 1},
            "evaluation": _evaluation(args),
        },
    )


def run(args: argparse.Namespace) -> None:
    """Train and evaluate each (seed, arm) not yet in --out; then the base. Stops starting new
    work when the last one's duration would overrun --budget seconds."""
    import torch

    from litelong.api.v1alpha1.trainingjob import Evaluation
    from litelong.eval import runner, subject
    from litelong.store import ArtifactStore
    from litelong.train import parallel
    from litelong.train.loop import train

    started = time.monotonic()
    store = ArtifactStore(f"file://{(args.work / 'store').resolve()}")
    args.out.mkdir(parents=True, exist_ok=True)
    evaluation = Evaluation.model_validate(_evaluation(args))
    prepared = args.work / "prepared.pkl"
    runner.load_prepared(prepared)
    if args.samples_only:  # generate and tokenize every eval sample once, for later commands
        from litelong.eval import text

        runner.prepare(
            text.load(args.tokenizer), evaluation, args.eval_lengths, store, args.workers
        )
        runner.save_prepared(prepared)
        print(f"samples prepared in {time.monotonic() - started:.0f} s", flush=True)
        return
    work = [(seed, arm) for seed in args.seeds for arm in args.arms]
    if args.base:
        work.append((0, "base"))
    longest = 0.0
    for seed, arm in work:
        target = args.out / f"{arm}-s{seed}.json"
        if target.exists():
            continue
        elapsed = time.monotonic() - started
        if elapsed + longest * 1.1 > args.budget:
            print(f"{arm} seed {seed}: skipped, {elapsed:.0f} s used of {args.budget}", flush=True)
            continue
        begun = time.monotonic()
        record: dict[str, Any] = {"arm": arm, "seed": seed, "device": _device()}
        if arm == "base":
            who = subject.from_source(args.model, args.tokenizer)
            record.update(train_tokens=0, train_seconds=0.0)
        else:
            job = _job(args, arm, seed)
            result = train(job, store)
            parallel.stop()
            rows = result.rows
            record.update(
                train_tokens=sum(int(r["tokens"]) for r in rows),
                train_seconds=round(sum(float(r["seconds"]) for r in rows), 1),
                loss_first10=sum(r["loss"] for r in rows[:10]) / max(1, len(rows[:10])),
                loss_last10=sum(r["loss"] for r in rows[-10:]) / max(1, len(rows[-10:])),
                rope_theta=None,
            )
            del result
            torch.cuda.empty_cache() if torch.cuda.is_available() else None
            who = subject.from_job(job, store, args.tokenizer)
            record["rope_theta"] = float(who.model.model.config.rope_theta)  # type: ignore[attr-defined]
        results = runner.evaluate(who, evaluation, args.eval_lengths, store)
        record.update(results)
        record["wall_seconds"] = round(time.monotonic() - begun, 1)
        target.write_text(json.dumps(record, indent=1) + "\n")
        longest = max(longest, record["wall_seconds"])
        print(
            f"{arm} seed {seed}: trained {record['train_tokens']:,} tokens in "
            f"{record['train_seconds']} s; average {results['average']}; "
            f"{record['wall_seconds']} s in all",
            flush=True,
        )
        del who
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def dequantize(args: argparse.Namespace) -> None:
    """The GGUF as a float32 Hugging Face folder, once, so each arm loads it in seconds."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(args.gguf.parent), gguf_file=args.gguf.name, dtype="float32"
    )
    model.save_pretrained(args.out)
    print(f"{args.gguf} -> {args.out}", flush=True)


def _device() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def table(args: argparse.Namespace) -> None:
    """Markdown tables from the results files: score per task and length (seeds pooled, with
    a 95% Wilson interval), per-length average, answer loss, loss by position, cost."""
    from litelong.eval.scorer import wilson

    records = [json.loads(Path(p).read_text()) for p in args.results]
    arms: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        arms.setdefault(record["arm"], []).append(record)
    order = [a for a in ("base", *ARMS) if a in arms]
    lengths = records[0]["lengths"]
    tasks = list(dict.fromkeys(s["task"] for s in records[0]["scores"]))
    print("| arm | seeds | task | " + " | ".join(f"{n // 1024}K" for n in lengths) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in lengths) + " |")
    for arm in order:
        runs = arms[arm]
        for task in [*tasks, "average"]:
            cells = []
            for length in lengths:
                if task == "average":
                    values = [r["average"][str(length)] for r in runs]
                    cells.append(f"**{sum(values) / len(values):.3f}**")
                    continue
                rows = [
                    s
                    for r in runs
                    for s in r["scores"]
                    if s["task"] == task and s["length"] == length
                ]
                correct, n = (
                    sum(s.get("credit", s["correct"]) for s in rows),
                    sum(s["n"] for s in rows),
                )
                low, high = wilson(correct, n)
                cells.append(f"{correct / n:.2f} [{low:.2f}, {high:.2f}]")
            print(f"| {arm} | {len(runs)} | {task} | " + " | ".join(cells) + " |")
    print()
    print("| arm | all tasks and lengths pooled | difference from standard (95% CI) |")
    print("| --- | --- | --- |")
    pooled = {}
    for arm in order:
        rows = [s for r in arms[arm] for s in r["scores"]]
        pooled[arm] = (sum(s.get("credit", s["correct"]) for s in rows), sum(s["n"] for s in rows))
    for arm in order:
        correct, n = pooled[arm]
        low, high = wilson(correct, n)
        difference = "-"
        if "standard" in pooled and arm != "standard":
            c0, n0 = pooled["standard"]
            p, p0 = correct / n, c0 / n0
            half = 1.96 * math.sqrt(p * (1 - p) / n + p0 * (1 - p0) / n0)
            difference = f"{p - p0:+.3f} [{p - p0 - half:+.3f}, {p - p0 + half:+.3f}]"
        print(f"| {arm} | {correct / n:.3f} [{low:.3f}, {high:.3f}] (n={n}) | {difference} |")
    print()
    print(
        "| arm | answer loss (nats/token, mean over tasks) | "
        + " | ".join(f"{n // 1024}K" for n in lengths)
        + " |"
    )
    print("| --- | --- | " + " | ".join("---" for _ in lengths) + " |")
    for arm in order:
        runs = arms[arm]
        cells = []
        for length in lengths:
            values = [s["answer_nll"] for r in runs for s in r["scores"] if s["length"] == length]
            cells.append(f"{sum(values) / len(values):.3f}")
        print(f"| {arm} | | " + " | ".join(cells) + " |")
    print()
    buckets = records[0]["perplexity"]["buckets"]
    print("| arm | " + " | ".join(f"{b['start']}-{b['end']}" for b in buckets) + " |")
    print("| --- | " + " | ".join("---" for _ in buckets) + " |")
    for arm in order:
        runs = arms[arm]
        cells = []
        for i in range(len(buckets)):
            values = [r["perplexity"]["buckets"][i]["mean_nll"] for r in runs]
            cells.append(f"{sum(values) / len(values):.3f}")
        print(f"| {arm} | " + " | ".join(cells) + " |")
    print()
    print(
        "| arm | seeds | training tokens per seed | training GPU-s per seed | eval s per run "
        "| loss first 10 -> last 10 steps | overlap (samples with a 13-gram in training data) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for arm in order:
        runs = arms[arm]
        tokens = runs[0]["train_tokens"]
        seconds = sum(r["train_seconds"] for r in runs) / len(runs)
        evals = sum(r["seconds"] for r in runs) / len(runs)
        losses = (
            " / ".join(f"{r['loss_first10']:.3f} -> {r['loss_last10']:.3f}" for r in runs)
            if arm != "base"
            else "-"
        )
        overlap = "-"
        if "decontamination" in runs[0]:
            tasks_seen = runs[0]["decontamination"]["tasks"]
            overlap = (
                ", ".join(
                    f"{t} {e['contaminated']}/{e['samples']}"
                    for t, e in tasks_seen.items()
                    if e["contaminated"]
                )
                or "none"
            )
        print(
            f"| {arm} | {len(runs)} | {tokens:,} | {seconds:.0f} | {evals:.0f} | {losses} "
            f"| {overlap} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="CPU box: index, topics, arms' samples, eval inputs")
    p.add_argument("corpus", type=Path, help="folder of *.jsonl.zst (the large corpus)")
    p.add_argument("--work", type=Path, default=Path("bench-dq"))
    r = sub.add_parser("run", help="GPU: train each arm at equal tokens, evaluate everything")
    r.add_argument("--work", type=Path, default=Path("bench-dq"))
    r.add_argument("--out", type=Path, required=True, help="one JSON file per (arm, seed)")
    r.add_argument("--model", required=True, help="base model: HF folder, .gguf or preset")
    r.add_argument("--tokenizer", default=None, help="tokenizer.json of the samples")
    r.add_argument("--arms", nargs="+", default=list(ARMS))
    r.add_argument("--seeds", nargs="+", type=int, default=[0])
    r.add_argument("--base", action="store_true", help="also evaluate the untrained base")
    r.add_argument("--length", type=int, default=LENGTH)
    r.add_argument("--steps", type=int, default=100)
    r.add_argument("--lr", type=float, default=1e-4)
    r.add_argument("--eval-lengths", nargs="+", type=int, default=[4096, 8192, 16384, 32768])
    r.add_argument("--samples", type=int, default=10)
    r.add_argument("--perplexity-documents", type=int, default=20)
    r.add_argument("--samples-only", action="store_true", help="only make the eval samples")
    r.add_argument("--workers", type=int, default=16, help="processes making the samples")
    r.add_argument("--budget", type=float, default=540.0, help="seconds this command may use")
    d = sub.add_parser("dequantize", help="GPU machine: the GGUF as an HF folder")
    d.add_argument("gguf", type=Path)
    d.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("table", help="markdown tables of the results")
    t.add_argument("results", nargs="+", type=Path)
    args = parser.parse_args()
    {"prepare": prepare, "run": run, "dequantize": dequantize, "table": table}[args.command](args)


if __name__ == "__main__":
    main()
