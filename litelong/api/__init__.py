"""The public API: the four resources (litelong.io/v1alpha1) and manifest loading."""

from .loading import FieldError, InvalidManifest, load_file, load_text, parse
from .v1alpha1 import (
    API_VERSION,
    KINDS,
    BM25Index,
    Resource,
    SynthesisRun,
    TopicDebate,
    TrainingJob,
)

__all__ = [
    "API_VERSION",
    "KINDS",
    "BM25Index",
    "FieldError",
    "InvalidManifest",
    "Resource",
    "SynthesisRun",
    "TopicDebate",
    "TrainingJob",
    "load_file",
    "load_text",
    "parse",
]
