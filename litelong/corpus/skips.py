"""Why a corpus record is skipped: the reasons `SkipCounter` counts while reading a corpus."""

from ..skips import SkipCounter

__all__ = ["REASONS", "SkipCounter"]

#: Reasons a corpus record is skipped, with what they mean for the user.
REASONS = {
    "invalid_json": "the line is not valid JSON",
    "invalid_utf8": "the line is not valid UTF-8",
    "not_an_object": "the JSON value is not an object",
    "missing_text": "the text field is missing or null",
    "text_not_string": "the text field is not a string",
    "too_short": "shorter than minChars after normalisation (empty included)",
    "too_long": "longer than maxChars",
    "duplicate": "the same normalised text was already indexed",
    "duplicate_id": "the same id was already indexed with other text",
}
