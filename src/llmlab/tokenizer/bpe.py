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
4. The first merges, which each touch thousands of chunks, run on one flat numpy array of all chunks instead
   (``_FlatPhase``): the same count changes, computed for every site at once. When merges get narrow (under
   ~128 sites each) the chunks become lists and step 3 goes on with the same counts and heap. Together
   1.5-1.6x faster than step 3 alone on the bundled corpus (docs/LOG.md), with the same merges.

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

import numpy as np
import regex

from llmlab.errors import LlmlabError

# GPT-4's cl100k_base split pattern: contractions, letters with one optional leading non-letter, 1-3 digit
# numbers, punctuation runs, newlines, and whitespace (a trailing space attaches to the next word).
GPT4_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
)
# GPT-2's pattern, for people who want it (``--pattern gpt2``).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# GPT-4's pattern with every digit a chunk of its own (as Llama's tokenizer splits digits): a number has one
# tokenization, digit by digit, which a small model doing arithmetic reads and writes more easily.
DIGITS_PATTERN = GPT4_PATTERN.replace(r"\p{N}{1,3}", r"\p{N}")
NAMED_PATTERNS = {"gpt4": GPT4_PATTERN, "gpt2": GPT2_PATTERN, "digits": DIGITS_PATTERN}

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
    state = _FlatPhase(chunk_counts)
    merges = state.run(num_merges)
    return _incremental_phase(state, merges, num_merges)


def _too_few(done: int, asked: int) -> LlmlabError:
    return LlmlabError(f"the training text supports only {done} merges (vocabulary {256 + done} before special "
                       f"tokens); asked for {asked}. Use a smaller vocab size or more text.")


def _sum_by_key(keys: np.ndarray, weights: np.ndarray) -> tuple[list[int], list[int]]:
    """Unique ``keys`` (int64) and the integer sum of ``weights`` over each, as Python lists."""
    order = np.argsort(keys, kind="stable")
    keys, weights = keys[order], weights[order]
    first = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1]))) if len(keys) else keys
    return keys[first].tolist(), np.add.reduceat(weights, first).tolist() if len(keys) else []


# The flat phase runs while its merges touch at least this many chunk positions on average (an exponential
# moving average over merges): one merge there costs a few passes over the whole array (~0.3-0.5 ms on the
# 4.5 MB corpus's 266k positions), one chunk visit of the incremental phase ~2.5 us, so they break even near here.
_FLAT_MIN_SITES = 128


class _FlatPhase:
    """The first merges on one flat array: every unique chunk's tokens end to end, separated by -1.

    The first few hundred merges each touch thousands of chunks (" t", "he", " a" ...: 46% of all chunk visits
    of a 16k vocabulary are in its first 200 merges), where per-chunk Python costs microseconds a chunk. Here a
    merge is a handful of numpy passes: find the sites, drop the overlapping ones (runs of a a a merge left to
    right), turn each site's neighbours into pair-count changes, apply their per-pair sums to the counts, write
    the new id and delete the right halves. The counts and the heap are the ones the incremental phase goes on
    with, so the merges are exactly those of the incremental algorithm alone (tests/tokenizer).
    """

    def __init__(self, chunk_counts: dict[bytes, int]):
        chunks = [c for c in chunk_counts if len(c) >= 2]  # single-byte chunks hold no pairs
        lens = np.fromiter(map(len, chunks), dtype=np.int64, count=len(chunks))
        n_bytes = int(lens.sum())
        # tokens: -1, chunk 0's bytes, -1, chunk 1's bytes, ..., -1 (so s - 1 and s + 2 are in range for a site s)
        self.tokens = np.full(n_bytes + len(chunks) + 1, -1, dtype=np.int32)
        pos = np.arange(n_bytes) + np.repeat(np.arange(1, len(chunks) + 1), lens)  # byte k of the join -> slot
        self.tokens[pos] = np.frombuffer(b"".join(chunks), dtype=np.uint8)
        self.weights = np.zeros(len(self.tokens), dtype=np.int64)  # the chunk's count at each of its positions
        self.weights[pos] = np.repeat(np.fromiter((chunk_counts[c] for c in chunks), dtype=np.int64,
                                                  count=len(chunks)), lens)
        left, right = self.tokens[:-1], self.tokens[1:]
        ok = (left >= 0) & (right >= 0)
        keys, sums = _sum_by_key(left[ok].astype(np.int64) << _SHIFT | right[ok], self.weights[:-1][ok])
        self.pair_counts: dict[int, int] = dict(zip(keys, sums))
        self.heap = [(-n, key) for key, n in self.pair_counts.items()]
        heapq.heapify(self.heap)

    def top(self) -> int | None:
        """The pair to merge next (it stays on the heap), or None when no pair is left; stale entries are
        re-pushed with their live counts on the way (see the module docstring)."""
        heap, pair_counts = self.heap, self.pair_counts
        while heap:
            neg, key = heap[0]
            live = pair_counts.get(key, 0)
            if live == -neg:
                return key
            heapq.heappop(heap)
            if live > 0:
                heapq.heappush(heap, (-live, key))
        return None

    def run(self, num_merges: int) -> list[tuple[int, int]]:
        merges: list[tuple[int, int]] = []
        tokens, mask = self.tokens, (1 << _SHIFT) - 1
        busy = None  # moving average of sites per merge
        while len(merges) < num_merges:
            key = self.top()
            if key is None:
                raise _too_few(len(merges), num_merges)
            a, b = key >> _SHIFT, key & mask
            s = np.flatnonzero((tokens[:-1] == a) & (tokens[1:] == b))  # (sites,) left positions of a b
            busy = len(s) if busy is None else 0.9 * busy + 0.1 * len(s)
            if busy < _FLAT_MIN_SITES:
                break
            heapq.heappop(self.heap)
            new_id = 256 + len(merges)
            merges.append((a, b))
            if a == b and len(s) > 1:
                # a run of k a's holds k - 1 overlapping sites; left to right, the ones at even offsets merge
                k = np.arange(len(s))
                run_start = np.concatenate(([True], np.diff(s) != 1))
                s = s[(k - np.maximum.accumulate(np.where(run_start, k, 0))) % 2 == 0]
            self._apply(s, a, b, new_id)
            keep = np.ones(len(tokens), dtype=bool)
            keep[s + 1] = False
            tokens[s] = new_id
            tokens = self.tokens = tokens[keep]
            self.weights = self.weights[keep]
        return merges

    def _apply(self, s: np.ndarray, a: int, b: int, new_id: int) -> None:
        """Pair-count changes of merging the sites ``s`` (non-overlapping, sorted), as the incremental phase
        makes them: (left, a) -> (left, new) and (b, right) -> (new, right); between two adjacent sites
        (a b a b) the old (b, a) goes once and (new, new) comes once."""
        n = self.weights[s]
        after_site = np.concatenate(([False], s[1:] - s[:-1] == 2))  # the left neighbour is a merged pair
        before_site = np.concatenate((after_site[1:], [False]))
        left = self.tokens[s - 1].astype(np.int64)
        right = self.tokens[s + 2].astype(np.int64)
        lm = (left >= 0) & ~after_site
        rm = right >= 0
        rn = rm & ~before_site
        a, b, new = np.int64(a), np.int64(b), np.int64(new_id)
        keys = np.concatenate((left[lm] << _SHIFT | a, left[lm] << _SHIFT | new,
                               np.full(int(after_site.sum()), new << _SHIFT | new), b << _SHIFT | right[rm],
                               new << _SHIFT | right[rn]))
        deltas = np.concatenate((-n[lm], n[lm], n[after_site], -n[rm], n[rn]))
        pair_counts, born = self.pair_counts, []
        for k, d in zip(*_sum_by_key(keys, deltas)):
            old = pair_counts.get(k)
            if old is None:
                if d:
                    pair_counts[k] = d
                    born.append(k)  # pairs with new_id: pushed once their counts are final (now)
            else:
                pair_counts[k] = old + d
        pair_counts.pop(int(a) << _SHIFT | int(b), None)
        for k in born:
            heapq.heappush(self.heap, (-pair_counts[k], k))

    def words(self) -> tuple[list[list[int]], list[int]]:
        """Each chunk as a list of token ids, and its count."""
        sep = np.flatnonzero(self.tokens < 0).tolist()
        flat = self.tokens.tolist()
        counts = self.weights[np.asarray(sep[:-1], dtype=np.int64) + 1].tolist()
        return [flat[i + 1:j] for i, j in zip(sep, sep[1:])], counts


def _incremental_phase(state: _FlatPhase, merges: list[tuple[int, int]], num_merges: int) -> list[tuple[int, int]]:
    """The remaining merges, each rewriting only the chunks that hold its pair (``where``)."""
    if len(merges) == num_merges:
        return merges
    words, counts = state.words()
    pair_counts, heap = state.pair_counts, state.heap
    pc_get = pair_counts.get
    where: dict[int, set[int]] = {}
    wh_get = where.get
    for wi, w in enumerate(words):
        for x, y in zip(w, w[1:]):
            key = x << _SHIFT | y
            s = wh_get(key)
            if s is None:
                where[key] = {wi}
            else:
                s.add(wi)
    # Pairs containing the newest id are new in their step (their `where` entry is created then); they get their
    # heap entries once their counts are final, at the end of the step.
    born: list[int] = []

    def gain(k: int, wi: int, n: int) -> None:
        """Chunk ``wi`` (count n) gains an occurrence of the pair ``k``."""
        pair_counts[k] = pc_get(k, 0) + n
        s = wh_get(k)
        if s is None:
            where[k] = {wi}
            born.append(k)
        else:
            s.add(wi)

    mask = (1 << _SHIFT) - 1
    while len(merges) < num_merges:
        if not heap:
            raise _too_few(len(merges), num_merges)
        neg, key = heapq.heappop(heap)
        live = pc_get(key, 0)
        if live != -neg:
            if live > 0:  # stale entry: the count went down since it was pushed
                heapq.heappush(heap, (-live, key))
            continue
        a, b = key >> _SHIFT, key & mask
        new_id = 256 + len(merges)
        merges.append((a, b))
        new_left = new_id << _SHIFT  # the key of (new_id, x) is new_left | x
        for wi in where.pop(key):
            w = words[wi]
            # The first site: an a followed by b. Stale membership (the pair left this chunk in an earlier merge)
            # finds none: index() raises ValueError when no a is left, IndexError when a is the last token.
            try:
                i = w.index(a)  # C-speed scan to the next candidate
                while w[i + 1] != b:
                    i = w.index(a, i + 1)
            except (ValueError, IndexError):
                continue
            m = len(w)
            n = counts[wi]
            j = i + 2
            if b not in w[j:] or not _has_site(w, a, b, j):
                # One site (most chunks): update the pairs around it and rewrite the chunk in place.
                if i:
                    left = w[i - 1]
                    pair_counts[left << _SHIFT | a] -= n
                    gain(left << _SHIFT | new_id, wi, n)
                if j < m:
                    right = w[j]
                    pair_counts[b << _SHIFT | right] -= n
                    gain(new_left | right, wi, n)
                w[i:j] = (new_id,)
                continue
            # Several sites, merged left to right without overlap.
            sites = [i]
            i = j - 1
            while True:
                try:
                    i = w.index(a, i + 1)
                except ValueError:
                    break
                if i + 1 < m and w[i + 1] == b:
                    sites.append(i)
                    i += 1  # the next search starts after b: no overlapping sites
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
                        pair_counts[w[i - 1] << _SHIFT | a] -= n
                    gain(left << _SHIFT | new_id, wi, n)
                j = i + 2
                if j < m:
                    pair_counts[b << _SHIFT | w[j]] -= n
                    if not (j + 1 < m and w[j] == a and w[j + 1] == b):  # the next token is not merged now
                        gain(new_left | w[j], wi, n)
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
        born.clear()
    return merges


def _has_site(w: list[int], a: int, b: int, start: int) -> bool:
    """Whether ``a b`` occurs in ``w`` at or after ``start``."""
    try:
        i = w.index(a, start)
        while w[i + 1] != b:
            i = w.index(a, i + 1)
    except (ValueError, IndexError):
        return False
    return True
