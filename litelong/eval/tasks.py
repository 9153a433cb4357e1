"""RULER-family synthetic tasks, generated offline from a seed and a length.

Each generator returns an `EvalSample`: the context (haystack with what was hidden in it), the
question with its answer prefix, and the answers, kept together as RULER keeps them. The whole
prompt plus the expected answer fits in `length` tokens of the model's tokenizer.

Names follow RULER (NVIDIA/RULER, `scripts/data/synthetic/`) where the task measures the same
thing: niah_single, niah_multikey, niah_multivalue, niah_multiquery, vt, cwe. Differences:
keys and words are seeded pseudo-words (RULER draws English words from `wonderwords`), the
needle and the answer prefix share their wording ("The special magic number for K is:"), and
multi-answer tasks list their answers in context order (the order the scorer forces first; it
credits them in any order, see `scorer`). `topical` is litelong's own: a single needle
among documents retrieved for one topic from the user's index (on-topic distractors).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class TaskTooLong(ValueError):
    """A task's prompt and answer do not fit the requested length in this tokenizer."""


class TextTokenizer(Protocol):
    def count(self, text: str) -> int: ...


@dataclass(frozen=True)
class EvalSample:
    task: str
    length: int  # token budget of prompt + answer
    index: int
    context: str
    query: str  # the question, ending with the answer prefix
    answers: tuple[str, ...]
    needles: tuple[str, ...] = field(default=())  # the text hidden in the haystack

    @property
    def prompt(self) -> str:
        return f"{self.context}\n\n{self.query}"

    @property
    def target(self) -> str:
        """What greedy decoding must produce right after the prompt."""
        return " " + ", ".join(self.answers)


NOISE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def pseudo_word(rng: random.Random, syllables: int = 3) -> str:
    return "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(syllables))


def _distinct(rng: random.Random, count: int, make: Callable[[], str]) -> list[str]:
    seen: list[str] = []
    while len(seen) < count:
        value = make()
        if value not in seen:
            seen.append(value)
    return seen


def _number(rng: random.Random) -> str:
    return str(rng.randint(1_000_000, 9_999_999))


def _key(rng: random.Random) -> str:
    return f"{pseudo_word(rng)}-{pseudo_word(rng)}"


def _needle(key: str, value: str) -> str:
    return f"The special magic number for {key} is: {value}."


class Haystack:
    """Filler text in units (sentences or documents), drawn in a seeded order."""

    def __init__(self, documents: Sequence[str] | None = None) -> None:
        self.documents = [d.strip() for d in documents or () if d.strip()]

    def fingerprint(self) -> str:
        import hashlib

        digest = hashlib.sha256()
        for document in self.documents:
            digest.update(document.encode())
        return digest.hexdigest()[:16]

    @property
    def kind(self) -> str:
        return "documents" if self.documents else "noise"

    def units(self, rng: random.Random) -> list[str]:
        if not self.documents:
            return [NOISE.strip()]
        order = list(self.documents)
        rng.shuffle(order)
        return order


def _fill(
    tokenizer: TextTokenizer,
    budget: int,
    units: list[str],
    needles: list[str],
    rng: random.Random,
    sep: str = "\n\n",
) -> str:
    """Units (cycled; one too long for what is left is passed over) up to `budget` tokens, with
    each needle inserted at a random depth between two units; shrinks until the exact token
    count fits."""
    sizes: dict[int, int] = {}  # counted lazily: a haystack may hold thousands of documents
    needle_tokens = sum(tokenizer.count(n + sep) for n in needles)
    chosen: list[str] = []
    total, i, misses = needle_tokens, 0, 0
    while len(chosen) < 1_000_000 and misses < min(len(units), 50):
        unit = i % len(units)
        i += 1
        if unit not in sizes:
            sizes[unit] = tokenizer.count(units[unit] + sep)
        if total + sizes[unit] > budget:  # too long for what is left: try the next one
            misses += 1
            continue
        misses = 0
        chosen.append(units[unit])
        total += sizes[unit]
    if not chosen:  # one unit longer than the budget: cut it by words
        words = units[0].split()
        keep = max(1, len(words) * max(0, budget - needle_tokens) // max(1, sizes[0]))
        chosen = [" ".join(words[:keep])]
    while True:
        pieces = list(chosen)
        for needle in needles:
            pieces.insert(rng.randint(0, len(pieces)), needle)
        text = sep.join(pieces)
        if tokenizer.count(text) <= budget or len(chosen) <= 1:
            return text
        chosen.pop()


def _budget(tokenizer: TextTokenizer, length: int, query: str, target: str) -> int:
    return length - tokenizer.count(f"\n\n{query}") - tokenizer.count(target) - 8


def _niah(
    name: str,
    keys: int,
    values: int,
    queries: int,
) -> Callable[[TextTokenizer, int, int, random.Random, Haystack], EvalSample]:
    def generate(
        tokenizer: TextTokenizer, length: int, index: int, rng: random.Random, hay: Haystack
    ) -> EvalSample:
        names = _distinct(rng, keys, lambda: _key(rng))
        found = {
            k: _distinct(rng, values if k == names[0] else 1, lambda: _number(rng)) for k in names
        }
        needles = [_needle(k, v) for k in names for v in found[k]]
        asked = names[:queries]
        if values > 1:
            query = (
                f"What are all the special magic numbers for {asked[0]} mentioned in the "
                f"provided text? The special magic numbers for {asked[0]} are:"
            )
        elif queries > 1:
            listed = ", ".join(asked)
            query = (
                f"What are the special magic numbers for {listed} mentioned in the provided "
                f"text? The special magic numbers for {listed} are:"
            )
        else:
            query = (
                f"What is the special magic number for {asked[0]} mentioned in the provided "
                f"text? The special magic number for {asked[0]} is:"
            )
        context = _fill(
            tokenizer,
            _budget(tokenizer, length, query, " " + ", ".join(v for k in asked for v in found[k])),
            hay.units(rng),
            needles,
            rng,
        )
        if values > 1:  # in the order the context holds them
            answers = sorted(found[asked[0]], key=lambda v: context.index(_needle(asked[0], v)))
        else:
            answers = [found[k][0] for k in asked]
        return EvalSample(name, length, index, context, query, tuple(answers), tuple(needles))

    return generate


def variable_tracking(
    tokenizer: TextTokenizer, length: int, index: int, rng: random.Random, hay: Haystack
) -> EvalSample:
    """RULER's vt (one chain, four hops, noise haystack): which variables hold the value?"""
    names = _distinct(rng, 5, lambda: pseudo_word(rng, 2).upper())
    value = str(rng.randint(10_000, 99_999))
    chain = [f"VAR {names[0]} = {value}."] + [
        f"VAR {names[i]} = VAR {names[i - 1]}." for i in range(1, len(names))
    ]
    query = (
        f"Find all variables that are assigned the value {value} in the text above. "
        f"According to the chain of variable assignment in the text above, {len(names)} "
        f"variables are assigned the value {value}, they are:"
    )
    budget = _budget(tokenizer, length, query, " " + ", ".join(names))
    units = Haystack().units(rng)
    context = _fill(tokenizer, budget, units, [], rng)
    pieces = context.split("\n\n")
    spots = sorted(rng.randint(0, len(pieces)) for _ in chain)  # hops keep their order
    for offset, (spot, line) in enumerate(zip(spots, chain, strict=True)):
        pieces.insert(spot + offset, line)
    text = "\n\n".join(pieces)
    while tokenizer.count(text) > budget and len(pieces) > len(chain):
        drop = next(i for i in range(len(pieces) - 1, -1, -1) if pieces[i] not in chain)
        pieces.pop(drop)
        text = "\n\n".join(pieces)
    return EvalSample("vt", length, index, text, query, tuple(names), tuple(chain))


def common_words(
    tokenizer: TextTokenizer, length: int, index: int, rng: random.Random, hay: Haystack
) -> EvalSample:
    """RULER's cwe: ten words appear 30 times each (fewer where the length is short), the
    others 3 times; name the ten."""
    common = _distinct(rng, 10, lambda: pseudo_word(rng))
    query = (
        "Question: What are the 10 most common words in the above list? "
        "Answer: The top 10 words that appear most often in the list are:"
    )
    budget = _budget(tokenizer, length, query, " " + ", ".join(common))
    per_word = tokenizer.count(" 1000. bakoru")
    capacity = max(0, budget - 40) // per_word
    frequent = max(4, min(30, capacity // 20))  # RULER's 30 where the length allows
    rare_count = max(0, (capacity - 10 * frequent) // 3)
    rare = [w for w in _distinct(rng, rare_count + 10, lambda: pseudo_word(rng)) if w not in common]
    while True:
        words = common * frequent + rare[:rare_count] * 3
        rng.shuffle(words)
        listed = " ".join(f"{i + 1}. {w}" for i, w in enumerate(words))
        context = (
            "Below is a numbered list of words. In these words, some appear more often than "
            f"others. Memorize the ones that appear most often.\n{listed}"
        )
        if tokenizer.count(context) <= budget or rare_count == 0:
            break
        rare_count = int(rare_count * 0.9)
    order = sorted(common, key=lambda w: words.index(w))
    return EvalSample("cwe", length, index, context, query, tuple(order), ())


TaskGenerator = Callable[[TextTokenizer, int, int, random.Random, Haystack], EvalSample]

TASKS: dict[str, TaskGenerator] = {
    "niah_single": _niah("niah_single", keys=1, values=1, queries=1),
    "niah_multikey": _niah("niah_multikey", keys=4, values=1, queries=1),
    "niah_multivalue": _niah("niah_multivalue", keys=1, values=4, queries=1),
    "niah_multiquery": _niah("niah_multiquery", keys=4, values=1, queries=2),
    "vt": variable_tracking,
    "cwe": common_words,
    "topical": _niah("topical", keys=1, values=1, queries=1),
}


def generate(
    task: str,
    tokenizer: TextTokenizer,
    length: int,
    count: int,
    seed: int,
    haystack: Haystack,
) -> list[EvalSample]:
    """`count` samples of `task` at `length`; the same (task, length, index, seed) always gives
    the same sample."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
    samples = [
        TASKS[task](tokenizer, length, i, random.Random(f"{seed}/{task}/{length}/{i}"), haystack)
        for i in range(count)
    ]
    for sample in samples:
        needed = tokenizer.count(sample.prompt + sample.target)
        if needed > length:
            raise TaskTooLong(
                f"task {task} does not fit in --length {length}: sample {sample.index} takes "
                f"{needed} tokens; give a longer length or leave the task out"
            )
    return samples
