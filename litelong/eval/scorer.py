"""Scoring: exact match of greedy decoding, per task and length, with a 95% interval.

A sample is correct when greedy decoding from the prompt produces exactly the expected answer
tokens. It is computed teacher-forced, in one forward pass: decoding would emit the answer iff
at every answer position the model's most likely next token is the answer's token (given the
answer's earlier tokens, which it would have emitted). RULER scores by string match of sampled
text; this is the same criterion for single answers, and stricter for multi-answer tasks (the
answers must come in context order). The mean negative log-likelihood of the answer tokens is
reported beside it: it still separates models that get nothing exactly right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z95 = 1.959964


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion: well behaved at 0 and n (unlike mean +- 2 SE)."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Scored:
    correct: bool
    answer_nll: float  # mean over the answer's tokens, nats


def score(predicted: np.ndarray, target: np.ndarray, nll: np.ndarray) -> Scored:
    """`predicted[i]` is the argmax next token where `target[i]` is expected."""
    if target.size == 0:
        raise ValueError("an empty answer cannot be scored")
    return Scored(bool(np.array_equal(predicted, target)), float(np.mean(nll)))


@dataclass(frozen=True)
class TaskScore:
    task: str
    length: int
    n: int
    correct: int
    answer_nll: float

    @property
    def score(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.correct, self.n)

    def as_dict(self) -> dict[str, object]:
        low, high = self.interval
        return {
            "task": self.task,
            "length": self.length,
            "n": self.n,
            "correct": self.correct,
            "score": self.score,
            "ci95": [low, high],
            "answer_nll": self.answer_nll,
        }


def aggregate(task: str, length: int, scored: list[Scored]) -> TaskScore:
    nll = float(np.mean([s.answer_nll for s in scored])) if scored else float("nan")
    return TaskScore(task, length, len(scored), sum(s.correct for s in scored), nll)
