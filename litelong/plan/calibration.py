"""Measured throughputs the planner's formulas use, kept per machine in the store.

`litelong plan --calibrate` measures them on this machine (probes.py) and writes
`<store>/_calibration/<host>.json`, outside every artifact folder; later plans read it back.
Without one, the defaults below are the figures in bench/README.md (the 2-core VM and one
H100), and every estimate says so in its basis.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime

from pydantic import BaseModel, Field, ValidationError

from ..store import ArtifactStore

FOLDER = "_calibration"


class IndexRates(BaseModel):
    """A BM25Index build, end to end (read, normalise, dedup, index, commit), in CPU seconds:
    CPU time is what a busy machine does not stretch; `cores` turns it into wall time."""

    text_bytes_per_cpu_s: float = Field(description="UTF-8 text bytes indexed per CPU second.")
    cpu_seconds_per_document: float = Field(default=0.0, description="Per indexed document.")
    fixed_cpu_seconds: float = Field(default=0.0, description="Per build: writer setup, commit.")
    disk_bytes_per_text_byte: float = Field(description="Index bytes per text byte.")
    disk_bytes_per_document: float = Field(default=0.0, description="Index bytes per document.")
    cores: float = Field(
        default=1.0, description="CPU seconds per wall second the probes used (cores kept busy)."
    )

    def cpu_seconds(self, text_bytes: float, documents: float) -> float:
        """CPU seconds of the work that shards divide (the fixed part left out)."""
        return text_bytes / self.text_bytes_per_cpu_s + documents * self.cpu_seconds_per_document


class SynthesisRates(BaseModel):
    """A SynthesisRun of one mode and format, in CPU seconds: the build (retrieval and
    tokenization, per tokenized token) and the commit and report (per run and per sample: the
    coherence queries), each with the cores it kept busy; and the output size."""

    tokens_per_cpu_s: float = Field(description="Tokens tokenized (and assembled) per CPU second.")
    build_cpu_seconds: float = Field(default=0.0, description="Per run: opening index, tokenizer.")
    report_cpu_seconds: float = Field(description="Per run: commit, report (plots, tables).")
    report_cpu_seconds_per_sample: float = Field(
        default=0.0, description="Per sample the report's coherence measures (at most 200)."
    )
    build_cores: float = Field(default=1.0, description="CPU seconds per wall second, build.")
    report_cores: float = Field(default=1.0, description="CPU seconds per wall second, report.")
    bytes_per_token: float = Field(description="Committed bytes per output token.")
    fixed_bytes: float = Field(default=0.0, description="Committed bytes per run (report...).")


class DebateRates(BaseModel):
    """One debated subject against one set of endpoints (the probe debates a real subject)."""

    seconds_per_subject: float
    requests_per_subject: float
    tokens_in: dict[str, float] = Field(description="Prompt tokens per subject, by role.")
    tokens_out: dict[str, float] = Field(description="Completion tokens per subject, by role.")
    topics_per_subject: float
    bytes_per_subject: float
    cpu_per_wall: float = Field(
        default=1.0, description="CPU seconds per wall second the probe used (cores kept busy)."
    )


class GpuRates(BaseModel):
    name: str
    memory_gib: float
    peak_tflops: float
    mfu: float | None = Field(
        default=None, description="Measured MFU of a few training steps; None: the bench's."
    )


class Calibration(BaseModel):
    host: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    cores: int = Field(default_factory=lambda: os.cpu_count() or 1)
    tokenizer_bytes_per_s: float | None = None
    tokens_per_byte: float | None = None
    index: dict[str, IndexRates] = Field(
        default_factory=dict, description='"plain" and "chunks" (with the chunk index).'
    )
    synthesis: dict[str, SynthesisRates] = Field(
        default_factory=dict, description='By "mode/format", e.g. "litelong/mds".'
    )
    debate: dict[str, DebateRates] = Field(
        default_factory=dict, description="By endpoint key (debate.endpoint_key)."
    )
    gpu: GpuRates | None = None

    @property
    def label(self) -> str:
        return f"calibrated on {self.host} at {self.created_at:%Y-%m-%d %H:%M} UTC"


def host_name() -> str:
    return socket.gethostname() or "localhost"


def calibration_path(store: ArtifactStore, host: str | None = None) -> str:
    return store.join(FOLDER, f"{host or host_name()}.json")


def save(store: ArtifactStore, calibration: Calibration) -> str:
    """Write atomically; returns the file's URI."""
    path = calibration_path(store, calibration.host)
    store.write_atomic(path, calibration.model_dump_json(indent=2))
    return store.uri_of(path)


def load(store: ArtifactStore, host: str | None = None) -> Calibration | None:
    """This machine's calibration in the store, or None (none, or one of an older layout)."""
    path = calibration_path(store, host)
    try:
        raw = store.fs.cat_file(path)
    except FileNotFoundError:
        return None
    try:
        return Calibration.model_validate(json.loads(raw))
    except ValidationError:  # written by an older litelong, with other rates: calibrate again
        return None
