"""The debate for one subject (LiteLong, arXiv 2509.15568): propose → cross-critique → judge →
retain.

Each debater proposes 2 x `topicsPerSubject` topics; each critiques the *other* debater's list;
the judge sees every topic with its proposer and critique and names the ones to reject; a
retention strategy decides what is kept. An answer that cannot be read gets one repair request;
if that fails too, the subject is recorded as failed with the raw answers, and the run goes on.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..api.v1alpha1.topicdebate import TopicDebateSpec
from ..llm import ChatClient
from ..taxonomy import Subject
from .answers import Critique, JudgeAnswer, Proposal, UnusableAnswer, parse_answer
from .prompts import (
    CRITIQUE_STEP,
    JUDGE_CATEGORIES,
    JUDGE_STEP,
    PROPOSE_STEP,
    REPAIR,
    SYSTEM,
    Step,
)
from .topics import (
    clean_topic,
    is_near_duplicate,
    label_problem,
    problem_with,
    retrieval_query,
    topic_key,
)

AVOID_LIST_LENGTH = 12
ALL_SIBLINGS = 100_000  # the specificity rule compares a topic with every sibling
T = TypeVar("T")


async def all_or_none(*steps: Coroutine[Any, Any, T]) -> list[T]:
    """Like `asyncio.gather`, but the first failure cancels the other steps and waits for them
    before it is raised: no request outlives a failed run, and none fails later with a traceback
    at the event loop's shutdown."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(step) for step in steps]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


@dataclass
class Candidate:
    """A proposed topic and everything said about it."""

    id: int  # its number in the judge's list, 1-based
    topic: str
    explanation: str
    proposer: str
    position: int  # its place in its proposer's list, 0-based
    critic: str = ""
    critique: str = "unjudged"  # accepted | rejected | unjudged
    critique_reason: str = ""
    judge: str = "kept"  # kept | rejected
    judge_category: str = ""
    judge_reason: str = ""
    kept: bool = False
    dropped: str = ""  # why not kept: judge, critique, fixed_k or duplicate

    @property
    def key(self) -> frozenset[str]:
        return topic_key(self.topic)


@dataclass
class Exchange:
    """One request and its answer, for transcripts.jsonl (no keys: they live in headers)."""

    subject: str
    step: str
    role: str
    model: str
    endpoint: str
    messages: list[dict[str, str]]
    answer: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool
    attempts: int
    repair: bool
    problem: str = ""


@dataclass
class SubjectOutcome:
    subject: Subject
    candidates: list[Candidate] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    dropped_on_proposal: Counter[str] = field(default_factory=Counter)
    failed: str = ""
    raw_answers: list[str] = field(default_factory=list)

    @property
    def kept(self) -> list[Candidate]:
        return [candidate for candidate in self.candidates if candidate.kept]


class StepFailed(Exception):
    def __init__(self, what: str, problem: str, raw_answers: list[str]) -> None:
        super().__init__(f"{what}: {problem}")
        self.raw_answers = raw_answers


class Debate:
    """Runs the protocol for subjects, with two debater clients and a judge client."""

    def __init__(
        self,
        spec: TopicDebateSpec,
        debaters: list[ChatClient],
        judge: ChatClient,
        siblings: Callable[[Subject, int], list[Subject]],
    ) -> None:
        self.spec = spec
        self.names = [debater.name for debater in spec.debaters]
        self.debaters = debaters
        self.judge = judge
        self.siblings = siblings

    async def run(self, subject: Subject) -> SubjectOutcome:
        outcome = SubjectOutcome(subject)
        try:
            lists = await all_or_none(*(self._propose(outcome, i) for i in range(2)))
            number = 0
            for debater, proposals in enumerate(lists):
                for position, (topic, explanation) in enumerate(proposals):
                    number += 1
                    outcome.candidates.append(
                        Candidate(number, topic, explanation, self.names[debater], position)
                    )
            await all_or_none(*(self._critique(outcome, critic=i) for i in range(2)))
            await self._judge(outcome)
        except StepFailed as failure:
            outcome.failed = str(failure)
            outcome.raw_answers = failure.raw_answers
            return outcome
        retain(outcome.candidates, self.spec.retention, self._limit)
        return outcome

    @property
    def _limit(self) -> int:
        """At most this many topics are kept: `fixedK` for keepFixedK, else topicsPerSubject."""
        if self.spec.retention == "keepFixedK" and self.spec.fixed_k:
            return self.spec.fixed_k
        return self.spec.topics_per_subject

    # -- the three steps -------------------------------------------------------------------

    async def _propose(self, outcome: SubjectOutcome, debater: int) -> list[tuple[str, str]]:
        subject = outcome.subject
        wanted = 2 * self.spec.topics_per_subject
        avoid = self.siblings(subject, AVOID_LIST_LENGTH)
        prompt = PROPOSE_STEP.template.format(
            heading=subject.heading,
            subject=subject.title,
            n=wanted,
            avoid="\n".join(f"- {other.title}" for other in avoid) or "- (none)",
        )

        parents = subject.label.split(" / ")[:-1]
        siblings = [other.name for other in self.siblings(subject, ALL_SIBLINGS)]

        def read(text: str) -> list[tuple[str, str]]:
            kept: list[tuple[str, str]] = []
            keys: list[frozenset[str]] = []
            dropped: Counter[str] = Counter()
            for proposed in parse_answer(text, Proposal).topics:
                topic = clean_topic(proposed.topic)
                key = topic_key(topic)
                problem = problem_with(topic) or label_problem(
                    topic, subject.name, parents, siblings
                )
                if problem is None and any(is_near_duplicate(key, other) for other in keys):
                    problem = "duplicate"
                if problem is None and len(kept) == wanted:
                    problem = "over_count"
                if problem is not None:
                    dropped[problem] += 1
                    continue
                kept.append((topic, " ".join(proposed.explanation.split())))
                keys.append(key)
            if not kept:
                raise UnusableAnswer(
                    "no usable topic (each must be 1 to 12 words, distinct, and more than a "
                    f"taxonomy label): {dict(dropped)}"
                )
            outcome.dropped_on_proposal.update(dropped)
            return kept

        role = self.names[debater]
        return await self._ask(
            outcome, self.debaters[debater], role, PROPOSE_STEP, prompt, wanted, read
        )

    async def _critique(self, outcome: SubjectOutcome, critic: int) -> None:
        proposer = self.names[1 - critic]
        theirs = [c for c in outcome.candidates if c.proposer == proposer]
        subject = outcome.subject
        prompt = CRITIQUE_STEP.template.format(
            subject=subject.title,
            heading=subject.heading,
            topics="\n".join(f"{i}. {c.topic} — {c.explanation}" for i, c in enumerate(theirs, 1)),
        )

        def read(text: str) -> dict[int, tuple[str, str]]:
            verdicts: dict[int, tuple[str, str]] = {
                verdict.id: (verdict.verdict, " ".join(verdict.reason.split()))
                for verdict in parse_answer(text, Critique).verdicts
                if 1 <= verdict.id <= len(theirs)
            }
            if not verdicts:
                raise UnusableAnswer(f"no verdict names a topic number from 1 to {len(theirs)}")
            return verdicts

        role = self.names[critic]
        verdicts = await self._ask(
            outcome, self.debaters[critic], role, CRITIQUE_STEP, prompt, len(theirs), read
        )
        for number, candidate in enumerate(theirs, 1):
            candidate.critic = role
            if number in verdicts:
                candidate.critique, candidate.critique_reason = verdicts[number]

    async def _judge(self, outcome: SubjectOutcome) -> None:
        subject = outcome.subject
        lines = []
        for c in outcome.candidates:
            said = f"{c.critic}'s critique: {c.critique}"
            if c.critique_reason:
                said += f" ({c.critique_reason})"
            lines.append(f"{c.id}. {c.topic} — {c.explanation}\n   by {c.proposer}; {said}")
        prompt = JUDGE_STEP.template.format(
            subject=subject.title,
            heading=subject.heading,
            topics="\n".join(lines),
            categories=", ".join(JUDGE_CATEGORIES),
        )
        count = len(outcome.candidates)

        def read(text: str) -> dict[int, tuple[str, str]]:
            return {
                rejection.id: (
                    rejection.category if rejection.category in JUDGE_CATEGORIES else "other",
                    " ".join(rejection.reason.split()),
                )
                for rejection in parse_answer(text, JudgeAnswer).rejected
                if 1 <= rejection.id <= count
            }

        rejected = await self._ask(outcome, self.judge, "judge", JUDGE_STEP, prompt, count, read)
        for candidate in outcome.candidates:
            if candidate.id in rejected:
                candidate.judge = "rejected"
                candidate.judge_category, candidate.judge_reason = rejected[candidate.id]

    # -- one request, with one repair ------------------------------------------------------

    async def _ask(
        self,
        outcome: SubjectOutcome,
        client: ChatClient,
        role: str,
        step: Step,
        prompt: str,
        items: int,
        read: Callable[[str], T],
    ) -> T:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        schema = step.schema(items)
        raw: list[str] = []
        for repair in (False, True):
            answer = await client.chat(messages, self.spec.sampling, schema, step.name)
            raw.append(answer.text)
            exchange = Exchange(
                subject=outcome.subject.code,
                step=step.name,
                role=role,
                model=client.model,
                endpoint=client.base_url,
                messages=messages,
                answer=answer.text,
                prompt_tokens=answer.prompt_tokens,
                completion_tokens=answer.completion_tokens,
                cached=answer.cached,
                attempts=answer.attempts,
                repair=repair,
            )
            outcome.exchanges.append(exchange)
            try:
                return read(answer.text)
            except UnusableAnswer as problem:
                exchange.problem = str(problem)
                messages = [
                    *messages,
                    {"role": "assistant", "content": answer.text},
                    {
                        "role": "user",
                        "content": REPAIR.format(problem=problem, shape=step.shape),
                    },
                ]
        raise StepFailed(f"{step.name} by {role}", exchange.problem, raw)


def retain(candidates: list[Candidate], strategy: str, limit: int) -> None:
    """Mark the kept candidates, at most `limit`; near-duplicates of a kept topic are never kept.

    filterReject keeps all but the judge's rejections; keepAccepted keeps only what the critique
    accepted; keepFixedK keeps the best `limit`, ranked by judge verdict, then critique, then
    position in the proposer's list (debaters alternating). When more than `limit` survive
    filterReject or keepAccepted, each debater's first choices are kept, alternating (the rest
    are dropped as "limit"): topicsPerSubject is what a subject yields at most.
    """
    order: list[Candidate] = list(candidates)
    if strategy == "keepFixedK":
        order.sort(
            key=lambda c: (c.judge == "rejected", c.critique != "accepted", c.position, c.id)
        )
    kept_keys: list[frozenset[str]] = []
    for candidate in order:
        if strategy == "filterReject" and candidate.judge == "rejected":
            candidate.dropped = "judge"
        elif strategy == "keepAccepted" and candidate.critique != "accepted":
            candidate.dropped = "critique"
        elif strategy == "keepFixedK" and len(kept_keys) == limit:
            candidate.dropped = "fixed_k"
        elif any(is_near_duplicate(candidate.key, key) for key in kept_keys):
            candidate.dropped = "duplicate"
        else:
            candidate.kept = True
            kept_keys.append(candidate.key)
    survivors = sorted((c for c in candidates if c.kept), key=lambda c: (c.position, c.id))
    for candidate in survivors[limit:]:
        candidate.kept, candidate.dropped = False, "limit"


def topic_record(outcome: SubjectOutcome, candidate: Candidate) -> dict[str, Any]:
    """One line of topics.jsonl / candidates.jsonl."""
    subject = outcome.subject
    return {
        "subject_code": subject.code,
        "heading": subject.heading,
        "subject": subject.label,
        "topic": candidate.topic,
        "explanation": candidate.explanation,
        "query": retrieval_query(candidate.topic, subject.title),
        "proposer": candidate.proposer,
        "critique": {
            "by": candidate.critic,
            "verdict": candidate.critique,
            "reason": candidate.critique_reason,
        },
        "judge": {
            "verdict": candidate.judge,
            "category": candidate.judge_category,
            "reason": candidate.judge_reason,
        },
        "kept": candidate.kept,
        "dropped": candidate.dropped,
    }
