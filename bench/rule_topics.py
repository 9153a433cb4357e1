"""Topics made by rule, with no LLM: seeded BISAC subjects committed as a TopicDebate's output,
for benchmarks that time what comes after the debate (synthesis.py, parallel_run.py, scale.py).

Each topic and query is the subject's title: the last two components of its path without
`General`. Over the 5,726 subjects, subjects repeat.
"""

from __future__ import annotations

import json
import random
from typing import Any

from litelong.store import ArtifactStore
from litelong.taxonomy import load_bisac


def rule_topics(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """`count` topic records (TopicDebate's `topics.jsonl` fields) of seeded BISAC subjects."""
    subjects = list(load_bisac().subjects)
    rng = random.Random(seed)
    picked = rng.sample(subjects, min(count, len(subjects)))
    picked += [rng.choice(subjects) for _ in range(count - len(picked))]
    records = []
    for subject in picked:
        parts = [p for p in subject.label.split(" / ")[1:] if p != "General"] or [subject.heading]
        title = " ".join(parts[-2:])
        records.append(
            {
                "subject_code": subject.code,
                "heading": subject.heading,
                "subject": subject.label,
                "topic": title,
                "query": title,
            }
        )
    return records


def commit_rule_topics(
    store: ArtifactStore, name: str, count: int, seed: int = 0, identity: str = "000000000000"
) -> None:
    """Commit `rule_topics(count, seed)` as TopicDebate `name` and make it current, so a
    SynthesisRun's `topicDebateRef: name` resolves to it in `litelong run`."""
    records = rule_topics(count, seed)
    debate = store.artifact("TopicDebate", name, identity)
    with debate.staging(0, 1) as folder:
        (folder / "topics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        debate.commit_part(0, 1, folder, counts={"topics": count})
    debate.commit({}, 1)
    debate.make_current()
