"""TopicDebate: BISAC subjects → topics, by two debater LLMs, cross-critique and a judge."""

from .protocol import Candidate, Debate, SubjectOutcome, retain
from .stage import build_part, subjects_of_shard

__all__ = ["Candidate", "Debate", "SubjectOutcome", "build_part", "retain", "subjects_of_shard"]
