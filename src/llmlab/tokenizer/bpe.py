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

import collections
import heapq
import itertools
import multiprocessing
import os
import sys
from collections import Counter
from typing import Iterable, Iterator

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


# A chunk never spans a newline followed by a non-space character under the GPT-2/GPT-4 patterns (no branch
# can take "\n" and then a letter, digit or punctuation), so cutting a text there leaves its chunks unchanged.
_SAFE_CUT = regex.compile(r"\n(?=\S)")
_BATCH_CHARS = 1 << 20  # texts are counted in batches of about this size, one batch per worker task
_PARALLEL_MIN_CHARS = 2 << 20  # below this, starting processes costs more than it saves


def _batches(texts: Iterable[str], cuttable: bool) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for text in texts:
        if not isinstance(text, str):
            raise LlmlabError(f"training texts must be str, got {type(text).__name__}")
        start = 0
        while cuttable and len(text) - start > _BATCH_CHARS:
            m = _SAFE_CUT.search(text, start + _BATCH_CHARS)
            if m is None:
                break
            yield [text[start:m.end()]]
            start = m.end()
        piece = text[start:] if start else text
        batch.append(piece)
        size += len(piece)
        if size >= _BATCH_CHARS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _count_batch(args: tuple[str, list[str]]) -> Counter:
    pattern, texts = args
    compiled = regex.compile(pattern)
    counts: Counter = Counter()
    for text in texts:
        counts.update(compiled.findall(clean_surrogates(text)))
    return counts


def count_chunks(texts: str | Iterable[str], pattern: str = GPT4_PATTERN, num_workers: int | None = None) -> Counter:
    """``{chunk bytes: occurrences}`` over all texts, chunks cut by ``pattern``.

    Large inputs are split into ~1 MB batches counted in ``num_workers`` processes (default: all cores);
    the regex split is the one part of training that parallelises cleanly.
    """
    if isinstance(texts, str):
        texts = [texts]
    batches = _batches(texts, cuttable=pattern in (GPT4_PATTERN, GPT2_PATTERN))
    workers = num_workers or os.cpu_count() or 1
    counts: Counter = Counter()
    # Look ahead until the input is big enough to be worth the processes (or runs out).
    head: list[list[str]] = []
    size = 0
    for b in batches:
        head.append(b)
        size += sum(map(len, b))
        if size >= _PARALLEL_MIN_CHARS and len(head) >= 2:
            break
    parallel = workers > 1 and len(head) >= 2 and size >= _PARALLEL_MIN_CHARS
    # Linux only: fork is the cheap start method, and macOS system libraries are not fork-safe.
    if parallel and sys.platform.startswith("linux"):
        # fork: workers inherit the loaded modules, so they start in milliseconds. At most 2 batches per
        # worker are in flight, so a streamed corpus is never held in memory whole.
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pending: collections.deque = collections.deque()
            for b in itertools.chain(head, batches):
                pending.append(pool.apply_async(_count_batch, ((pattern, b),)))
                if len(pending) >= 2 * workers:
                    counts.update(pending.popleft().get())
            while pending:
                counts.update(pending.popleft().get())
    else:
        for b in itertools.chain(head, batches):
            counts.update(_count_batch((pattern, b)))
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
        # Pairs containing new_id are new this step (their `where` entry is created here); they get their heap
        # entries once their counts are final.
        born: list[int] = []
        for wi in where.pop(key):
            w = words[wi]
            m = len(w)
            # Find the merge sites left to right without overlap; stale membership (the pair left this chunk in
            # an earlier merge) finds none.
            sites = []
            i = -1
            while True:
                try:
                    i = w.index(a, i + 1)  # C-speed scan to the next candidate
                except ValueError:
                    break
                if i + 1 < m and w[i + 1] == b:
                    sites.append(i)
                    i += 1  # the next search starts after b: no overlapping sites
            if not sites:
                continue
            n = counts[wi]
            # Update only the pairs around each site: (left, a) -> (left, new), (b, right) -> (new, right).
            # Between two adjacent sites (a b a b) the old (b, a) goes once and (new, new) comes once.
            out: list[int] = []
            prev_end = 0
            last_site_end = -1
            for i in sites:
                out.extend(w[prev_end:i])
                if i > 0:
                    left = out[-1]
                    if i != last_site_end:  # the left neighbour is an untouched token
                        k = w[i - 1] << _SHIFT | a
                        pair_counts[k] -= n
                    k = left << _SHIFT | new_id
                    pair_counts[k] = pair_counts.get(k, 0) + n
                    s = where.get(k)
                    if s is None:
                        where[k] = {wi}
                        born.append(k)
                    else:
                        s.add(wi)
                j = i + 2
                if j < m:
                    k = b << _SHIFT | w[j]
                    pair_counts[k] -= n
                    if not (j + 1 < m and w[j] == a and w[j + 1] == b):  # the next token is not merged now
                        k = new_id << _SHIFT | w[j]
                        pair_counts[k] = pair_counts.get(k, 0) + n
                        s = where.get(k)
                        if s is None:
                            where[k] = {wi}
                            born.append(k)
                        else:
                            s.add(wi)
                out.append(new_id)
                prev_end = j
                last_site_end = j
            out.extend(w[prev_end:])
            words[wi] = out
        pair_counts.pop(key, None)
        for k in born:
            n = pair_counts[k]
            if n > 0:
                heapq.heappush(heap, (-n, k))
    return merges
