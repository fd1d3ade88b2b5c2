"""Text cleaning: Unicode normalisation, control-character removal and whitespace repair.

    from llmlab.data.clean import clean_text, decode_bytes
    text, n_invalid = decode_bytes(raw)      # invalid UTF-8 -> U+FFFD, counted
    text = clean_text(text)

Used by ``llmlab data prepare`` (see ``pipeline.py``); tested in ``tests/data/test_clean_pii.py``.
"""

from __future__ import annotations

import codecs
import re
import threading
import unicodedata

# C0/C1 control characters except tab and newline (CR is handled first, as a line ending), plus DEL, the
# BOM / zero-width no-break space, and the Unicode line/paragraph separators that break line counting.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff\ufffe]")
_LINE_SEPS = re.compile("[\u2028\u2029\x85]")
_TRAILING_SPACE = re.compile(r"[ \t\u00a0\u3000]+$", re.MULTILINE)
# More than two blank lines in a row (four or more newlines) collapse to exactly two blank lines: plays use
# one or two blank lines as structure, and runs longer than that are layout noise.
_MANY_BLANK = re.compile(r"\n{4,}")


def decode_bytes(raw: bytes) -> tuple[str, int]:
    """Decode UTF-8, replacing each invalid byte sequence by U+FFFD; return ``(text, invalid_count)``."""
    try:
        return raw.decode("utf-8"), 0
    except UnicodeDecodeError:
        pass
    dec = CountingDecoder()
    text = dec.decode(raw, final=True)
    return text, dec.invalid


_counter = threading.local()


def _count_and_replace(e: UnicodeDecodeError) -> tuple[str, int]:
    _counter.n = getattr(_counter, "n", 0) + 1
    return "\ufffd", e.end


# A named error handler lets the C decoder do the work and call back only for the bad sequences.
codecs.register_error("llmlab-count-replace", _count_and_replace)


class CountingDecoder:
    """An incremental UTF-8 decoder (for streamed input) that replaces and counts invalid sequences;
    a multi-byte character split across two chunks is carried over, not counted as invalid."""

    def __init__(self) -> None:
        self.invalid = 0
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="llmlab-count-replace")

    def decode(self, data: bytes, final: bool = False) -> str:
        _counter.n = 0
        text = self._dec.decode(data, final=final)
        self.invalid += _counter.n
        return text


def clean_text(text: str) -> str:
    """NFC-normalise, unify line endings, drop control characters, strip trailing spaces, collapse runs of
    blank lines and strip the document. Idempotent: ``clean_text(clean_text(t)) == clean_text(t)``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _LINE_SEPS.sub("\n", text)
    text = _CONTROL.sub("", text)
    text = unicodedata.normalize("NFC", text)
    text = _TRAILING_SPACE.sub("", text)
    text = _MANY_BLANK.sub("\n\n\n", text)
    return text.strip()
