"""User-facing errors.

Anything a user can cause (a missing file, a malformed line, a bad flag value) raises ``LlmlabError`` with a
one-line message that says what is wrong and where (file, line, field). The CLI prints it as
``llmlab: error: <message>`` and exits with status 2 -- never a traceback for a user error.
"""


class LlmlabError(Exception):
    """An error caused by the user's input, reported as one line without a traceback."""

    exit_code = 2


def where(path, line: int | None = None, field: str | None = None) -> str:
    """Format a location prefix such as ``data.jsonl:12: field 'messages'``."""
    loc = str(path)
    if line is not None:
        loc += f":{line}"
    if field is not None:
        loc += f": field {field!r}"
    return loc


class ConfigError(LlmlabError, ValueError):
    """A config value out of range or not among its choices. A user error (one line at the CLI) and, for
    library callers building a config dataclass, a ``ValueError`` like any bad argument."""
