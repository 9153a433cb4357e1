"""Mode litelong's assembly with document lengths from the index against without (the fetch
path), in one process, alternated: what skipping reuse-limited claims unread saves.

Builds a SynthesisRun's claim table once from a committed BM25Index and TopicDebate, then
assembles the first `--topics` topics' samples twice per round: with each claim's length (as
the stage does) and with lengths unknown (as on an index built before the `chars` column).
Each pass starts with an empty tokenizer cache. Prints CPU and wall seconds per pass, texts
read, and the ratio; the datasets must be equal.

    python bench/litelong_lengths.py /work/scratch/store scale-1m-docs scale-topics-1000
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from litelong.api import parse
from litelong.index import open_index
from litelong.store import ArtifactStore
from litelong.synth.assembly import (
    PIECE_CHARS_PER_TOKEN,
    Candidates,
    Separator,
    TokenizedDocuments,
    claims,
    debate_topics,
    fill_samples,
)
from litelong.tokenizer import load_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", help="a file:// store folder")
    parser.add_argument("index")
    parser.add_argument("topics")
    parser.add_argument("--topics-used", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--target", type=int, default=131_072)
    args = parser.parse_args()
    store = ArtifactStore(f"file://{args.store}")
    resource = parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "SynthesisRun",
            "metadata": {"name": "bench"},
            "spec": {
                "topicDebateRef": args.topics,
                "indexRef": args.index,
                "targetTokens": args.target,
                "samplesPerTopic": 1,
                "reuse": {"maxUsesPerDocument": 1},
            },
        }
    )
    spec = resource.spec  # type: ignore[attr-defined]
    retriever = open_index(store.latest_committed("BM25Index", args.index))
    topics = debate_topics(store.latest_committed("TopicDebate", args.topics))
    tokenizer = load_tokenizer()
    separator = Separator(tokenizer)
    limit = spec.reuse.max_uses_per_document
    with claims(topics, Candidates(spec, retriever), spec.seed) as table:
        used = topics[: args.topics_used]
        pools = {topic.number: table[topic.number] for topic in used}
    read = [0]
    get = retriever.get

    def counting(ids: list[str]) -> list[str]:
        read[0] += len(ids)
        return get(ids)

    retriever.get = counting  # type: ignore[method-assign]
    figures: dict[str, list[tuple[float, float, int]]] = {"lengths": [], "fetch path": []}
    datasets = {}
    for _ in range(args.rounds):
        for name in figures:
            documents = TokenizedDocuments(retriever, tokenizer)
            read[0] = 0
            wall, cpu = time.perf_counter(), time.process_time()
            samples = []
            for topic in used:
                pool = pools[topic.number]
                if name == "fetch path":
                    pool = [dataclasses.replace(claim, chars=None) for claim in pool]
                stream = documents.stream(pool, spec.target_tokens * PIECE_CHARS_PER_TOKEN, limit)
                result = fill_samples(stream, 1, spec.target_tokens, separator)
                samples += [sample.input_ids.tobytes() for sample in result.samples]
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            figures[name].append((wall, cpu, read[0]))
            datasets[name] = samples
    assert datasets["lengths"] == datasets["fetch path"], "the datasets differ"
    for name, runs in figures.items():
        walls = ", ".join(f"{wall:.1f}" for wall, _, _ in runs)
        cpus = ", ".join(f"{cpu:.1f}" for _, cpu, _ in runs)
        print(f"{name}: wall s {walls}; CPU s {cpus}; texts read {runs[0][2]:,}")
    best = {name: min(cpu for _, cpu, _ in runs) for name, runs in figures.items()}
    print(
        f"{len(used)} topics, {len(datasets['lengths'])} samples (equal): CPU lengths / fetch "
        f"path {best['lengths'] / best['fetch path']:.2f} (best of {args.rounds})"
    )
    retriever.close()


if __name__ == "__main__":
    main()
