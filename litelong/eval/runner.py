"""Running an evaluation: generate every (task, length) sample, score it, measure perplexity by
position, check for contamination, and commit the results.

The CLI (`litelong eval`) and a TrainingJob's `evaluation:` block both end here, so the two
give the same numbers for the same model and spec.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..api.v1alpha1.trainingjob import Evaluation
from ..progress import NoProgress, Progress
from ..store import Artifact, ArtifactStore
from . import documents, fingerprint, perplexity, report
from .decontamination import TrainingNgrams
from .scorer import Scored, aggregate, score
from .subject import Subject
from .tasks import EvalSample, Haystack, generate
from .text import EvalTokenizer

KIND = "Evaluation"

#: A sample with its prompt's tokens and each answer's tokens (with its leading space).
Prepared = tuple[EvalSample, np.ndarray, tuple[np.ndarray, ...]]

#: Generated and tokenized samples, by (task, length, count, seed, haystack, tokenizer): every
#: model evaluated in one process with the same tokenizer sees the same samples, made once.
_PREPARED: dict[tuple[Any, ...], list[Prepared]] = {}

#: Forced between two answers of a multi-answer task (the target reads " a, b, c").
SEPARATOR = ","


def save_prepared(path: Path) -> None:
    """Keep the prepared samples for another process (benchmarks spread over commands)."""
    path.write_bytes(pickle.dumps(_PREPARED))


def load_prepared(path: Path) -> None:
    if path.is_file():
        _PREPARED.update(pickle.loads(path.read_bytes()))


def _key(
    words: EvalTokenizer, task: str, length: int, evaluation: Evaluation, hay: Haystack
) -> tuple[Any, ...]:
    return (
        "answers-v2",  # each answer tokenized apart (earlier caches hold one target)
        task,
        length,
        evaluation.samples_per_task,
        evaluation.seed,
        hay.fingerprint(),
        words.fingerprint(),
    )


def _prepared(
    words: EvalTokenizer, task: str, length: int, evaluation: Evaluation, hay: Haystack
) -> list[Prepared]:
    key = _key(words, task, length, evaluation, hay)
    if key not in _PREPARED:
        samples = generate(task, words, length, evaluation.samples_per_task, evaluation.seed, hay)
        _PREPARED[key] = [tokenized(words, s) for s in samples]
    return _PREPARED[key]


def tokenized(words: EvalTokenizer, sample: EvalSample) -> Prepared:
    answers = tuple(words.encode(" " + answer) for answer in sample.answers)
    return sample, words.encode(sample.prompt), answers


class Named(Protocol):
    name: str
    identity: str


def identity(
    subject: Named, evaluation: Evaluation, lengths: list[int], store: ArtifactStore | None = None
) -> str:
    """The model's identity, the evaluation spec and the fingerprints of the documents it
    reads: a change to any of them is evaluated again."""
    spec = evaluation.model_dump(mode="json", by_alias=True)
    document = {
        "model": subject.identity,
        "evaluation": spec,
        "lengths": lengths,
        "inputs": fingerprint.of_inputs(evaluation, store),
    }
    text = json.dumps(document, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def artifact(
    store: ArtifactStore, subject: Named, evaluation: Evaluation, lengths: list[int]
) -> Artifact:
    return store.artifact(KIND, subject.name, identity(subject, evaluation, lengths, store))


def evaluate(
    subject: Subject,
    evaluation: Evaluation,
    lengths: list[int],
    store: ArtifactStore | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every task at every length, perplexity and decontamination, as one results document."""
    progress = progress or NoProgress()
    started = time.monotonic()
    filler, topical = _haystacks(evaluation, store)
    ngrams = None
    if subject.training is not None and evaluation.decontamination_ngram > 0:
        ngrams = TrainingNgrams(subject.training(), evaluation.decontamination_ngram)
    scores, contamination = [], []
    work = [  # every sample made first: one that cannot fit its length stops before any scoring
        (task, length, _prepared(subject.tokenizer, task, length, evaluation, hay))
        for task in evaluation.tasks
        for hay in [topical if task == "topical" and topical is not None else filler]
        for length in lengths
    ]
    progress.start(len(evaluation.tasks) * len(lengths) * evaluation.samples_per_task, "samples")
    for task, length, prepared in work:
        scored = []
        for sample, prompt, answers in prepared:
            scored.append(_score(subject, prompt, answers))
            if ngrams is not None:
                contamination.append(_overlap(subject, ngrams, sample, prompt))
            progress.advance(1)
        scores.append(aggregate(task, length, scored).as_dict())
    results: dict[str, Any] = {
        "model": subject.label,
        "identity": subject.identity,
        "evaluation": evaluation.model_dump(mode="json", by_alias=True),
        "lengths": lengths,
        "haystack": filler.kind,
        "scores": scores,
        "average": _averages(scores, lengths),
    }
    if evaluation.perplexity is not None:
        texts = documents.read_texts(evaluation.perplexity)
        results["perplexity"] = perplexity.by_position(
            subject.model, subject.tokenizer, texts, max(lengths), evaluation.perplexity_documents
        )
    if ngrams is not None:
        results["decontamination"] = _summarise(contamination, ngrams)
    results["seconds"] = round(time.monotonic() - started, 1)
    return results


def prepare(
    words: EvalTokenizer,
    evaluation: Evaluation,
    lengths: list[int],
    store: ArtifactStore | None,
    workers: int = 1,
) -> None:
    """Generate and tokenize every sample without a model, on `workers` processes (forked:
    generation is pure Python, one core per (task, length))."""
    filler, topical = _haystacks(evaluation, store)
    jobs: list[tuple[str, int, Haystack]] = []
    for name in evaluation.tasks:
        hay = topical if name == "topical" and topical is not None else filler
        jobs.extend((name, length, hay) for length in lengths)
    if workers <= 1:
        for job in jobs:
            _prepared(words, job[0], job[1], evaluation, job[2])
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    _FORKED.update(words=words, evaluation=evaluation)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        for job, made in zip(jobs, pool.map(_prepare_one, jobs), strict=True):
            _PREPARED[_key(words, job[0], job[1], evaluation, job[2])] = made


_FORKED: dict[str, Any] = {}


def _prepare_one(job: tuple[str, int, Haystack]) -> list[Prepared]:
    task, length, hay = job
    return _prepared(_FORKED["words"], task, length, _FORKED["evaluation"], hay)


def _haystacks(
    evaluation: Evaluation, store: ArtifactStore | None
) -> tuple[Haystack, Haystack | None]:
    filler = Haystack(
        documents.read_texts(evaluation.haystack, 2000) if evaluation.haystack else None
    )
    topical = Haystack(_topical_texts(evaluation, store)) if "topical" in evaluation.tasks else None
    return filler, topical


def _score(subject: Subject, prompt: np.ndarray, answers: tuple[np.ndarray, ...]) -> Scored:
    return score(subject.model, prompt, list(answers), subject.tokenizer.encode(SEPARATOR))


def _overlap(
    subject: Subject, ngrams: TrainingNgrams, sample: EvalSample, ids: np.ndarray
) -> dict[str, Any]:
    found = ngrams.found(ids)
    needles = sum(len(ngrams.found(subject.tokenizer.encode(n))) > 0 for n in sample.needles)
    example = None
    if found.size:
        example = subject.tokenizer.decode(ids[int(found[0]) : int(found[0]) + ngrams.n])
    return {
        "task": sample.task,
        "length": sample.length,
        "ngrams": int(found.size),
        "needles": int(needles),
        "example": example,
    }


def _summarise(rows: list[dict[str, Any]], ngrams: TrainingNgrams) -> dict[str, Any]:
    tasks: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = tasks.setdefault(
            row["task"], {"samples": 0, "contaminated": 0, "needles_found": 0, "examples": []}
        )
        entry["samples"] += 1
        entry["contaminated"] += row["ngrams"] > 0
        entry["needles_found"] += row["needles"]
        if row["example"] and len(entry["examples"]) < 3:
            entry["examples"].append(row["example"])
    return {"ngram": ngrams.n, "training_tokens": ngrams.tokens, "tasks": tasks}


def _averages(scores: list[dict[str, Any]], lengths: list[int]) -> dict[str, float]:
    """The mean score over tasks at each length (RULER's per-length average)."""
    return {
        str(length): float(np.mean([s["score"] for s in scores if s["length"] == length]))
        for length in lengths
    }


def _topical_texts(evaluation: Evaluation, store: ArtifactStore | None) -> list[str]:
    topical = evaluation.topical
    assert topical is not None  # the model validator requires it for the topical task
    if topical.source is not None:
        return documents.read_texts(topical.source, topical.documents)
    if store is None:
        raise ValueError("the topical haystack's indexRef needs an artifact store")
    assert topical.index_ref is not None and topical.query is not None
    return documents.retrieve(store, topical.index_ref, topical.query, topical.documents)


def commit(target: Artifact, results: dict[str, Any]) -> None:
    """results.json and report.html, committed as one part then the manifest."""
    with target.staging(0, 1) as folder:
        report.write(folder, results)
        counts = {"samples": sum(int(s["n"]) for s in results["scores"])}
        target.commit_part(0, 1, folder, counts=counts)
    target.commit(
        {
            "model": results["model"],
            "evaluation": results["evaluation"],
            "lengths": results["lengths"],
        },
        1,
    )
