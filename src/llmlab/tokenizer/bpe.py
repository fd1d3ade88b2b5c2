"""Byte-level BPE training: regex pre-split, unique-chunk counting, incremental pair counts.

    from llmlab.tokenizer.bpe import GPT4_PATTERN, count_chunks, train_merges
    counts = count_chunks(["some text", "more text"], GPT4_PATTERN)
    merges = train_merges(counts, num_merges=1000)   # [(left_id, right_id), ...]; merge i makes id 256 + i

Usually reached through ``Tokenizer.train`` (``llmlab tokenizer train ...``), which adds special tokens.

The algorithm (what minbpe teaches, organised the way fast trainers are):

1. The text is cut into chunks with a regex (GPT-4's by default), so merges never cross a word/space/number
   boundary. Identical chunks are counted once: the corpus becomes ``{chunk bytes: count}`` (the Shakespeare
   train split, 4.5 MB, has ~36k unique chunks).
2. Every unique chunk is a list of token ids (bytes 0..255 at first). ``pair_counts[pair]`` is the number of
   times ``pair`` occurs, weighted by chunk counts; ``where[pair]`` is the set of chunks containing it.
3. Each step pops the most frequent pair from a max-heap, gives it the next id and rewrites only the chunks in
   ``where[pair]``, adjusting the counts of the pairs those chunks lose and gain. Nothing is recounted.

Heap entries are invalidated lazily: a pair's count only ever *decreases* after the step that creates it (new
pairs always contain the newest token), so an entry whose stored count differs from the live count is stale;
it is re-pushed with the live count when popped. A popped entry whose count is live is therefore the true
maximum.

Tie-breaking (deterministic): the highest count wins; among equal counts, the pair with the smallest
``(left_id, right_id)`` wins. Within a chunk, occurrences are merged left to right without overlap
(``a a a`` -> ``aa a``), exactly as the encoder applies merges.
"""

from __future__ import annotations

import heapq
from collections import Counter
from typing import Iterable

import regex

from llmlab.errors import LlmlabError

# GPT-4's cl100k_base split pattern: contractions, letters with one optional leading non-letter, 1-3 digit
# numbers, punctuation runs, newlines, and whitespace (a trailing space attaches to the next word).
GPT4_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
)
# GPT-2's pattern, for people who want it (``--pattern gpt2``).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
NAMED_PATTERNS = {"gpt4": GPT4_PATTERN, "gpt2": GPT2_PATTERN}

_SURROGATE = regex.compile(r"[\ud800-\udfff]")
_SHIFT = 32  # pair key = left << 32 | right: one int hashes faster than a tuple and sorts the same way


def clean_surrogates(text: str) -> str:
    """Replace lone surrogates (which have no UTF-8 form) with U+FFFD, as tiktoken does before encoding."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def resolve_pattern(pattern: str) -> str:
    """A named pattern (``gpt4``, ``gpt2``) or a regex; a regex that does not compile is a user error."""
    pattern = NAMED_PATTERNS.get(pattern, pattern)
    try:
        regex.compile(pattern)
    except regex.error as e:
        raise LlmlabError(f"bad split pattern {pattern!r}: {e}") from None
    return pattern


def count_chunks(texts: str | Iterable[str], pattern: str = GPT4_PATTERN) -> Counter:
    """``{chunk bytes: occurrences}`` over all texts, chunks cut by ``pattern``."""
    if isinstance(texts, str):
        texts = [texts]
    compiled = regex.compile(pattern)
    counts: Counter = Counter()
    for text in texts:
        if not isinstance(text, str):
            raise LlmlabError(f"training texts must be str, got {type(text).__name__}")
        counts.update(compiled.findall(clean_surrogates(text)))
    # Count strings first (cheap), encode each unique chunk once.
    return Counter({chunk.encode("utf-8"): n for chunk, n in counts.items() if chunk})


def train_merges(chunk_counts: dict[bytes, int], num_merges: int) -> list[tuple[int, int]]:
    """Learn ``num_merges`` merges from ``{chunk bytes: count}``; merge ``i`` creates token id ``256 + i``."""
    if num_merges < 0:
        raise LlmlabError(f"number of merges must be >= 0, got {num_merges}")
    words: list[list[int]] = []
    counts: list[int] = []
    for chunk, n in chunk_counts.items():
        if len(chunk) >= 2:  # single-byte chunks hold no pairs
            words.append(list(chunk))
            counts.append(n)

    pair_counts: dict[int, int] = {}
    where: dict[int, set[int]] = {}
    for wi, (w, n) in enumerate(zip(words, counts)):
        for x, y in zip(w, w[1:]):
            key = x << _SHIFT | y
            pair_counts[key] = pair_counts.get(key, 0) + n
            s = where.get(key)
            if s is None:
                where[key] = {wi}
            else:
                s.add(wi)

    heap = [(-n, key) for key, n in pair_counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[int, int]] = []
    mask = (1 << _SHIFT) - 1
    while len(merges) < num_merges:
        if not heap:
            raise LlmlabError(
                f"the training text supports only {len(merges)} merges (vocabulary {256 + len(merges)} "
                f"before special tokens); asked for {num_merges}. Use a smaller vocab size or more text."
            )
        neg, key = heapq.heappop(heap)
        live = pair_counts.get(key, 0)
        if live != -neg:
            if live > 0:  # stale entry: the count went down since it was pushed
                heapq.heappush(heap, (-live, key))
            continue
        a, b = key >> _SHIFT, key & mask
        new_id = 256 + len(merges)
        merges.append((a, b))
        born: set[int] = set()  # pairs containing new_id; they get their heap entries once their count is final
        for wi in where.pop(key):
            w = words[wi]
            n = counts[wi]
            out: list[int] = []
            i, m = 0, len(w)
            while i < m:
                if i + 1 < m and w[i] == a and w[i + 1] == b:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            if len(out) == m:  # stale membership: the pair left this chunk in an earlier merge
                continue
            for x, y in zip(w, w[1:]):
                k = x << _SHIFT | y
                pair_counts[k] -= n
            for x, y in zip(out, out[1:]):
                k = x << _SHIFT | y
                pair_counts[k] = pair_counts.get(k, 0) + n
                if x == new_id or y == new_id:
                    born.add(k)
                    s = where.get(k)
                    if s is None:
                        where[k] = {wi}
                    else:
                        s.add(wi)
            words[wi] = out
        pair_counts.pop(key, None)
        for k in born:
            n = pair_counts[k]
            if n > 0:
                heapq.heappush(heap, (-n, k))
    return merges
