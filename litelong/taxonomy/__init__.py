"""Subject taxonomies for TopicDebate: BISAC, its selection by spec, and sibling subjects."""

from .bisac import SelectionError, Subject, Taxonomy, UnknownSelection, load_bisac

__all__ = ["SelectionError", "Subject", "Taxonomy", "UnknownSelection", "load_bisac"]
