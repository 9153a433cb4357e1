"""Scoring: greedy decoding, teacher-forced, per task and length, with a 95% interval.

Single-answer tasks: a sample is correct when greedy decoding from the prompt produces exactly
the answer's tokens. It is computed in one forward pass: decoding would emit the answer iff at
every answer position the model's most likely next token is the answer's token (given the
answer's earlier tokens, which it would have emitted). RULER's `string_match_all` on one
answer is the same criterion.

Multi-answer tasks (niah_multivalue, niah_multiquery, vt, cwe) are scored as RULER's
`string_match_all` scores them: order-free, with partial credit, the fraction of the expected
answers the model gives. Teacher forcing follows the model's own order: answers are forced in
context order; where the model's argmax leaves the forced answer for another expected answer
that shares the tokens so far, that answer is forced there instead and the pass is redone
from that point (one more forward pass per reordering). An answer is credited when greedy
decoding would emit all its tokens. The separators between answers (", ") are forced, not
checked. The first answer slot where the model emits none of the remaining answers ends the
sample: what free decoding would say after that is not followed, so the credit is a lower
bound of RULER's (which also credits answers given later, after a wrong one).

The mean negative log-likelihood of the answer tokens (in context order) is reported beside
the score: it still separates models that get nothing right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

Z95 = 1.959964


def wilson(correct: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion: well behaved at 0 and n (unlike mean +- 2 SE).
    With partial credit `correct` is the summed credit; a score in [0, 1] with mean p has a
    variance of at most p(1 - p), so the interval is conservative there."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Scored:
    credit: float  # fraction of the expected answers given: 0 or 1 for one answer
    answer_nll: float  # mean over the answers' tokens in context order, nats

    @property
    def correct(self) -> bool:
        return self.credit == 1.0


class NextToken(Protocol):
    def next_token_stats(self, ids: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]: ...


def score(
    model: NextToken, prompt: np.ndarray, answers: list[np.ndarray], separator: np.ndarray
) -> Scored:
    """One sample: `answers` are the expected answers' tokens in context order (each with its
    leading space), `separator` the tokens forced between two answers."""
    if not answers or any(a.size == 0 for a in answers):
        raise ValueError("an empty answer cannot be scored")
    remaining = list(range(len(answers)))  # forced in this order after `prefix`
    prefix, found, first_nll = prompt, 0, None
    while remaining:
        pieces = [_piece(answers[a], separator, found + slot) for slot, a in enumerate(remaining)]
        ids = np.concatenate([prefix] + [np.concatenate(p) for p in pieces])
        predicted, nll = model.next_token_stats(ids, len(prefix))
        if first_nll is None:
            first_nll = _answer_nll(nll, pieces)
        at, redo = 0, False
        for slot, a in enumerate(list(remaining)):
            sep, tokens = pieces[slot]
            start = at + len(sep)
            got = predicted[start : start + len(tokens)]
            if np.array_equal(got, tokens):
                found += 1
                prefix = np.concatenate([prefix, sep, tokens])
                remaining.remove(a)
                at = start + len(tokens)
                continue
            agree = int(np.argmax(got != tokens))  # the first token the model leaves
            other = next(
                (
                    b
                    for b in remaining
                    if b != a
                    and len(answers[b]) > agree
                    and np.array_equal(answers[b][:agree], tokens[:agree])
                    and answers[b][agree] == got[agree]
                ),
                None,
            )
            if other is None:  # the model leaves every expected answer here
                remaining = []
            else:  # it is giving another answer first: force that one here
                remaining.remove(other)
                remaining.insert(remaining.index(a), other)
                redo = True
            break
        if not redo:
            break
    assert first_nll is not None
    return Scored(found / len(answers), first_nll)


def _piece(tokens: np.ndarray, separator: np.ndarray, given: int) -> tuple[np.ndarray, np.ndarray]:
    return (separator if given else separator[:0], tokens)


def _answer_nll(nll: np.ndarray, pieces: list[tuple[np.ndarray, np.ndarray]]) -> float:
    values, at = [], 0
    for sep, tokens in pieces:
        at += len(sep)
        values.append(nll[at : at + len(tokens)])
        at += len(tokens)
    return float(np.mean(np.concatenate(values)))


@dataclass(frozen=True)
class TaskScore:
    task: str
    length: int
    n: int
    correct: int  # samples with every answer given
    credit: float  # summed over samples: the score's numerator
    answer_nll: float

    @property
    def score(self) -> float:
        return self.credit / self.n if self.n else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.credit, self.n)

    def as_dict(self) -> dict[str, object]:
        low, high = self.interval
        return {
            "task": self.task,
            "length": self.length,
            "n": self.n,
            "correct": self.correct,
            "credit": self.credit,
            "score": self.score,
            "ci95": [low, high],
            "answer_nll": self.answer_nll,
        }


def aggregate(task: str, length: int, scored: list[Scored]) -> TaskScore:
    nll = float(np.mean([s.answer_nll for s in scored])) if scored else float("nan")
    credit = float(sum(s.credit for s in scored))
    return TaskScore(task, length, len(scored), sum(s.correct for s in scored), credit, nll)
