"""litelong.io/v1alpha1: the four resources, the single source of truth for CRDs and the CLI."""

from .bm25index import BM25Index, BM25IndexSpec, BM25IndexStatus, CorpusSource
from .meta import API_VERSION, GROUP, VERSION, Condition, Resource, StatusBase
from .synthesisrun import SynthesisRun, SynthesisRunSpec, SynthesisRunStatus
from .topicdebate import TopicDebate, TopicDebateSpec, TopicDebateStatus
from .trainingjob import TrainingJob, TrainingJobSpec, TrainingJobStatus

#: Every kind, in dependency order (a kind only refers to kinds before it).
KINDS: dict[str, type[Resource]] = {
    cls.__name__: cls for cls in (TopicDebate, BM25Index, SynthesisRun, TrainingJob)
}

__all__ = [
    "API_VERSION",
    "GROUP",
    "KINDS",
    "VERSION",
    "BM25Index",
    "BM25IndexSpec",
    "BM25IndexStatus",
    "Condition",
    "CorpusSource",
    "Resource",
    "StatusBase",
    "SynthesisRun",
    "SynthesisRunSpec",
    "SynthesisRunStatus",
    "TopicDebate",
    "TopicDebateSpec",
    "TopicDebateStatus",
    "TrainingJob",
    "TrainingJobSpec",
    "TrainingJobStatus",
]
