"""`litelong report RUN`: a SynthesisRun's figures counted from `metadata.parquet`
(`statistics`), plotted (`plots`), its topical coherence (`coherence`) and a sample browser
(`browse`), on one HTML page with its JSON (`page`)."""

from .page import (
    TOPICS_FILE,
    ReportSummary,
    UnreadableMetadata,
    compare_key_figures,
    write_comparison,
    write_report,
)
from .statistics import Tally

__all__ = [
    "TOPICS_FILE",
    "ReportSummary",
    "Tally",
    "UnreadableMetadata",
    "compare_key_figures",
    "write_comparison",
    "write_report",
]
