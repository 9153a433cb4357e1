"""litelong: long-context training data from short-document corpora (LiteLong + NExtLong)."""

__version__ = "0.1.0"
