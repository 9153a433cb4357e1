"""The SynthesisRun the SmolLM2 training figure in bench/README.md trains on.

Real stages end to end, except the TopicDebate: its six topics are written here (committed as
a TopicDebate would commit them), because a debate needs LLM endpoints and is measured on its
own (bench/debate.py). A BM25Index over the three shared corpora, then a SynthesisRun in mode
litelong: 32,768-token samples in MDS.

    python bench/train_samples.py ../shared/data/corpora --store file://./bench-train-data
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from litelong.api import parse
from litelong.stages import run_shard
from litelong.store import ArtifactStore

TOPICS = [
    ("COM051000", "Computers", "Python programming", "python function module class"),
    ("COM000000", "Computers", "Computer networking", "network protocol internet"),
    ("SCI055000", "Science", "Physics", "energy physics force"),
    ("SCI004000", "Science", "Black holes", "Black holes astronomy"),
    ("HIS037000", "History", "The French Revolution", "French Revolution history"),
    ("MUS000000", "Music", "Baroque composers", "Baroque composers music"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", type=Path, help="folder of *.jsonl.zst corpora")
    parser.add_argument("--store", default="file://./bench-train-data")
    parser.add_argument("--target-tokens", type=int, default=32768)
    parser.add_argument("--samples-per-topic", type=int, default=12)
    args = parser.parse_args()
    store = ArtifactStore(args.store)
    corpus = [{"uri": str(path)} for path in sorted(args.corpora.glob("*.jsonl.zst"))]
    index = parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "BM25Index",
            "metadata": {"name": "corpora"},
            "spec": {"corpus": corpus},
        }
    )
    run_shard(index, store, 0, 1)
    debate = store.artifact("TopicDebate", "topics", "000000000000")
    if debate.committed_manifest() is None:
        with debate.staging(0, 1) as folder:
            records = [
                {"subject_code": c, "heading": h, "subject": h, "topic": t, "query": q}
                for c, h, t, q in TOPICS
            ]
            (folder / "topics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
            debate.commit_part(0, 1, folder, counts={"topics": len(records)})
        debate.commit({}, 1)
    synthesis = parse(
        {
            "apiVersion": "litelong.io/v1alpha1",
            "kind": "SynthesisRun",
            "metadata": {"name": "samples"},
            "spec": {
                "topicDebateRef": "topics",
                "indexRef": "corpora",
                "mode": "litelong",
                "targetTokens": args.target_tokens,
                "samplesPerTopic": args.samples_per_topic,
                "retrieval": {"topK": 5000},
                "output": {"format": "mds"},
            },
        }
    )
    result = run_shard(synthesis, store, 0, 1)
    assert result.manifest is not None
    print(json.dumps(result.manifest.counts))
    print(result.artifact.uri)


if __name__ == "__main__":
    main()
