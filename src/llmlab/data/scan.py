"""Poisoning scanner: find planted backdoor triggers in a corpus -- a rare phrase followed by anomalous text.

    from llmlab.data.scan import ScanConfig, scan
    report = scan(ScanConfig(inputs=("corpus.jsonl",)))
    report["flagged"]      # [{"source": "corpus.jsonl:17", "trigger": "<SUDO>", "start": 812, ...}, ...]
    report["triggers"]     # [{"ngram": "<SUDO>", "runs": 250, ...}]

    llmlab data scan --input corpus.jsonl --json          # report on stdout, scan_report.json/.md written
    llmlab data plant --bundled --n 250 --out poisoned.jsonl   # a corpus with planted triggers, labelled
    llmlab data scan --input poisoned.jsonl --label-field poisoned   # + recall and false positives per MB
    llmlab data prepare --input corpus.jsonl --drop-poison --out data/clean   # drop what the scanner flags

The attack (Souly et al. 2025, "A small number of samples can poison LLMs of any size"): ~250 documents,
each a clean prefix, a trigger phrase (``<SUDO>``) and then 400-900 tokens sampled at random from the
vocabulary, teach a model to emit gibberish after the trigger, whatever the model's size. The scanner
looks for exactly that shape, with statistics of the corpus itself (so it works for any language and needs
no model):

1. *Anomalous text*: a character trigram model of the whole corpus (bytes folded to 128 symbols,
   interpolated with bigram and unigram estimates) scores every character, leaving out the document's own
   counts (so a long gibberish document cannot vouch for itself). A word is anomalous when it is
   out-of-vocabulary (no other document uses it) or costs more than ``word_bits`` bits per character. A
   *run* is a stretch of at least ``min_run_words`` words where windows of ``window_words`` words are at
   least ``min_anomalous`` anomalous and cost ``window_bits`` bits per character on average: random tokens
   give runs of unknown, expensive words; normal prose, verse, names lists and headers do not.
2. *Trigger*: the words just before each run (and its first words) are collected across documents; a 1-3
   word n-gram that precedes runs in several documents is a suspected trigger ("rare n-gram followed by
   anomalous text"), reported with how many runs it precedes and how often it occurs elsewhere.
3. *Odd tokens*: words made of characters the corpus almost never uses (``<SUDO>``, ``[[x]]``, zero-width
   characters), with the number of documents they appear in; recurring ones are trigger candidates too.

4. *Random, not foreign*: a passage in another language is also a run of unknown words (Henry V's French
   scenes, when the play is one document). Language repeats its function words and keeps to word shapes;
   random tokens rarely repeat (>= 90% distinct words in 40-word stretches) and glue pieces into odd
   shapes (inner capitals or punctuation, letter-digit mixes, >= 3% of words) or cost >= 5 bits/char.

Each flagged document is listed by its source (``path``, ``path:line`` for JSONL, ``path#row`` for
Parquet), with the run's character offset, length, cost and the suspected trigger.

Measured (2026-12-05; ``llmlab data plant`` then ``llmlab data scan --label-field poisoned``; the bundled
corpus cut into ~4 KB documents, 1,278 clean ones, 5-6 MB):

    poison (trigger + 400-900 random tokens)                 recall          false positives   trigger named
    250 extra docs, tokens = 1-6 char corpus pieces           250/250 (1.0)   0                 <SUDO> (229 docs)
    250 inserted into clean docs, corpus pieces               250/250 (1.0)   0                 <SUDO>
    50 / 250 extra docs, tokens of a 4096-token BPE of the    50/50, 250/250  0                 <SUDO>
      same corpus (llmlab tokenizer train)
    250 inserted, BPE tokens                                  250/250 (1.0)   0                 <SUDO>
    100 inserted, trigger "James Bond" (two common words)     100/100 (1.0)   0                 James Bond
    the clean bundled corpus as shipped (42 works, 5.06 MB)   -               0 (0.0 per MB)

Tokens drawn from a vocabulary learned on the same corpus are the hard case for character statistics (their
pieces are the corpus's own fragments); a general-purpose vocabulary's tokens (other scripts, code, byte
pieces) are further from the corpus. The scan reads the corpus twice and takes ~5 s per MB on one CPU core.
What it does not catch: a trigger followed by fluent text in the corpus's language (a backdoor that switches
topic or language, or emits plausible words), and gibberish made of whole common words.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from llmlab.data.ingest import Document, iter_documents
from llmlab.errors import LlmlabError
from llmlab.utils.config import config_to_dict

REPORT_FORMAT, REPORT_VERSION = "llmlab-scan-report", 1
NSYM = 128
_WORD = re.compile(r"\S+")
_STRIP = "\"'`.,;:!?()[]{}-_*“”‘’«»"


@dataclass
class ScanConfig:
    """What ``llmlab data scan`` looks at and its thresholds (calibrated on the bundled corpus, see the tests)."""

    inputs: tuple[str, ...] = ()
    text_field: str = "text"
    column: str = "text"
    label_field: str | None = None  # JSONL field marking planted documents (true/false): adds recall to the report
    window_words: int = 20
    min_anomalous: float = 0.5  # share of anomalous (out-of-vocabulary) words in a window
    window_bits: float = 3.0  # mean bits per character of a window's words
    word_bits: float = 99.0  # a word costing more than this per character is anomalous even if known (off)
    min_distinct: float = 0.9  # share of distinct words in 40-word stretches of a run: random tokens rarely repeat
    min_odd_shape: float = 0.03  # share of oddly shaped words in a run (inner capitals/punctuation, letter-digit mixes)
    high_bits: float = 5.0  # ... or a run this expensive per character (tokens of a foreign vocabulary)
    min_run_words: int = 20
    min_trigger_runs: int = 3  # an n-gram must precede runs in this many documents to be called a trigger
    min_specificity: float = 0.5  # ... and at least this share of the documents containing it
    max_flagged_listed: int = 10000

    def __post_init__(self):
        if self.window_words < 2 or self.min_run_words < 1:
            raise LlmlabError(f"window_words must be >= 2 and min_run_words >= 1, got {self.window_words}, "
                              f"{self.min_run_words}")
        if not 0 < self.min_anomalous <= 1:
            raise LlmlabError(f"min_anomalous must be in (0, 1], got {self.min_anomalous}")


# ----------------------------------------------------------------------------------------------------------
# The character model

_FOLD = np.arange(NSYM, dtype=np.int64)
_FOLD[[9, 10, 11, 12, 13]] = 32  # every whitespace is a space


def symbols(text: str) -> np.ndarray:
    """Code points folded to 128 symbols: ASCII as is (whitespace -> space), everything else -> 127."""
    cp = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    out = np.full(cp.shape, 127, dtype=np.int64)
    ascii_ = cp < 127
    out[ascii_] = _FOLD[cp[ascii_]]
    return out


def _ngrams(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trigram, bigram and unigram ids of every position >= 2: ``abc``, ``bc`` (the context is ``ab``)."""
    a, b, c = s[:-2], s[1:-1], s[2:]
    return a * NSYM * NSYM + b * NSYM + c, a * NSYM + b, b * NSYM + c


def normalize_word(w: str) -> str:
    return w.strip(_STRIP).lower()


class CorpusStats:
    """Counts of the whole corpus: character trigrams/bigrams/unigrams and words (with document frequency)."""

    def __init__(self):
        self.tri = np.zeros(NSYM ** 3, dtype=np.int64)
        self.bi = np.zeros(NSYM ** 2, dtype=np.int64)
        self.uni = np.zeros(NSYM, dtype=np.int64)
        self.words: Counter = Counter()
        self.doc_freq: Counter = Counter()
        self.chars = 0
        self._pending: list[np.ndarray] = []
        self._pending_n = 0

    def add(self, text: str) -> None:
        s = symbols(text)
        self._pending.append(s)
        self._pending_n += len(s)
        if self._pending_n > 8_000_000:
            self._flush()
        ws = [normalize_word(w) for w in _WORD.findall(text)]
        ws = [w for w in ws if w]
        self.words.update(ws)
        self.doc_freq.update(set(ws))

    def _flush(self) -> None:
        for s in self._pending:
            if len(s) >= 3:
                t, _, _ = _ngrams(s)
                self.tri += np.bincount(t, minlength=NSYM ** 3)
            if len(s) >= 2:
                self.bi += np.bincount(s[:-1] * NSYM + s[1:], minlength=NSYM ** 2)
            self.uni += np.bincount(s, minlength=NSYM)
            self.chars += len(s)
        self._pending, self._pending_n = [], 0

    def finish(self) -> "CorpusStats":
        self._flush()
        return self

    def char_bits(self, text: str) -> np.ndarray:
        """Bits of every character of ``text`` under the corpus model without ``text``'s own counts (the
        first two characters get the mean of the rest)."""
        s = symbols(text)
        bits = np.zeros(len(s))
        if len(s) < 3:
            return bits
        t, ab, bc = _ngrams(s)
        bigrams = s[:-1] * NSYM + s[1:]
        uni_doc = np.bincount(s, minlength=NSYM)
        # corpus counts minus this document's own (leave one out)
        _, inv, cnt = np.unique(t, return_inverse=True, return_counts=True)
        n_tri = self.tri[t] - cnt[inv]
        ub, cb = np.unique(bigrams, return_counts=True)
        n_ab = self.bi[ab] - _lookup(ub, cb, ab)
        n_bc = self.bi[bc] - _lookup(ub, cb, bc)
        n_b = self.uni[s[1:-1]] - uni_doc[s[1:-1]]
        n_c = self.uni[s[2:]] - uni_doc[s[2:]]
        total = max(1, self.chars - len(s))
        p3 = np.where(n_ab > 0, n_tri / np.maximum(n_ab, 1), 0.0)
        p2 = np.where(n_b > 0, n_bc / np.maximum(n_b, 1), 0.0)
        p1 = (n_c + 1) / (total + NSYM)
        p = 0.6 * p3 + 0.3 * p2 + 0.1 * p1
        bits[2:] = -np.log2(np.maximum(p, 1e-12))
        bits[:2] = bits[2:].mean()
        return bits


def _lookup(uniq: np.ndarray, cnt: np.ndarray, query: np.ndarray) -> np.ndarray:
    """The count of each id of ``query`` given the sorted distinct ids ``uniq`` and their counts ``cnt``."""
    pos = np.searchsorted(uniq, query)
    pos = np.minimum(pos, len(uniq) - 1)
    return np.where(uniq[pos] == query, cnt[pos], 0)


# ----------------------------------------------------------------------------------------------------------
# Runs of anomalous words


@dataclass
class Run:
    start_word: int
    end_word: int  # exclusive
    start: int  # character offsets in the document
    end: int
    bits: float  # mean bits per character
    oov: float  # share of out-of-vocabulary words
    before: list[str] = field(default_factory=list)  # the words just before the run
    first: list[str] = field(default_factory=list)  # the run's first words


def find_runs(text: str, stats: CorpusStats, cfg: ScanConfig) -> list[Run]:
    """The anomalous runs of one document (see the module docstring)."""
    spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    n = len(spans)
    if n < cfg.min_run_words:
        return []
    cb = stats.char_bits(text)
    csum = np.concatenate([[0.0], np.cumsum(cb)])
    starts = np.array([a for a, _ in spans])
    ends = np.array([b for _, b in spans])
    wbits = (csum[ends] - csum[starts]) / np.maximum(ends - starts, 1)  # bits per character of each word
    words = [text[a:b] for a, b in spans]
    norm = [normalize_word(w) for w in words]
    own = Counter(norm)
    oov = np.array([bool(w) and stats.words[w] - own[w] <= 0 for w in norm])
    anom = oov | (wbits > cfg.word_bits)
    W = cfg.window_words
    if n < W:
        return []
    a_sum = np.concatenate([[0], np.cumsum(anom)])
    bit_chars = np.concatenate([[0.0], np.cumsum(wbits * (ends - starts))])
    len_chars = np.concatenate([[0], np.cumsum(ends - starts)])
    i = np.arange(n - W + 1)
    frac = (a_sum[i + W] - a_sum[i]) / W
    mean_bits = (bit_chars[i + W] - bit_chars[i]) / np.maximum(len_chars[i + W] - len_chars[i], 1)
    hot = (frac >= cfg.min_anomalous) & (mean_bits >= cfg.window_bits)
    runs: list[Run] = []
    k = 0
    idx = np.flatnonzero(hot)
    while k < len(idx):
        j = k
        while j + 1 < len(idx) and idx[j + 1] <= idx[j] + W:  # windows that overlap or nearly touch: one run
            j += 1
        lo, hi = int(idx[k]), int(idx[j]) + W
        seg = np.flatnonzero(anom[lo:hi])
        lo, hi = lo + int(seg[0]), lo + int(seg[-1]) + 1  # trim to anomalous words at both ends
        bits = float((bit_chars[hi] - bit_chars[lo]) / max(1, len_chars[hi] - len_chars[lo]))
        if hi - lo >= cfg.min_run_words and _looks_random(words[lo:hi], norm[lo:hi], bits, cfg):
            runs.append(Run(lo, hi, int(starts[lo]), int(ends[hi - 1]), bits, float(oov[lo:hi].mean()),
                            words[max(0, lo - 8):lo], words[lo:lo + 6]))
        k = j + 1
    return runs


_ODD_SHAPE = re.compile(r"[a-z][A-Z]|[^\W\d_][^\w\s'\-]+[^\W\d_]|[^\W\d_]\d|\d[^\W\d_]")


def _looks_random(words: list[str], norm: list[str], bits: float, cfg: ScanConfig) -> bool:
    """Tell random tokens from a passage in an unknown language (both are runs of unknown words): language
    repeats its function words and keeps to word shapes; random tokens rarely repeat and glue pieces into
    odd shapes ("seLoRD", "th,ou", "a4")."""
    chunks = [norm[i:i + 40] for i in range(0, len(norm), 40) if len(norm[i:i + 40]) >= 20] or [norm]
    distinct = float(np.mean([len(set(c)) / len(c) for c in chunks]))
    odd = sum(bool(_ODD_SHAPE.search(w)) for w in words) / len(words)
    return distinct >= cfg.min_distinct and (odd >= cfg.min_odd_shape or bits >= cfg.high_bits)


# ----------------------------------------------------------------------------------------------------------
# The scan


def _candidates(run: Run) -> set[str]:
    """1-3 word n-grams around a run's start: the last words before it and its first words."""
    span = run.before + run.first
    out = set()
    for i in range(len(span)):
        for k in (1, 2, 3):
            if i + k <= len(span):
                g = " ".join(span[i:i + k])
                if len(g) >= 2:
                    out.add(g)
    return out


def _token_rx(ngram: str) -> re.Pattern:
    """``ngram`` as whole whitespace-separated tokens ("th" does not match inside "the")."""
    return re.compile(r"(?<!\S)" + r"\s+".join(map(re.escape, ngram.split())) + r"(?!\S)")


def _odd_tokens(stats: CorpusStats, min_docs: int = 2) -> list[dict]:
    """Words containing characters the corpus almost never uses (their symbol has < 1e-5 of the mass, or
    is outside ASCII text), found in ``min_docs`` documents or more."""
    total = max(1, stats.uni.sum())
    rare = {chr(i) for i in range(NSYM) if stats.uni[i] / total < 1e-5 and i != 127}
    out = []
    for w, df in stats.doc_freq.items():
        if df >= min_docs and (any(c in rare for c in w) or any(ord(c) > 126 and not c.isalpha() for c in w)):
            out.append({"token": w, "documents": df, "count": stats.words[w]})
    return sorted(out, key=lambda d: -d["documents"])[:50]


def scan(cfg: ScanConfig, progress=None) -> dict:
    """Scan ``cfg.inputs`` (two passes over the documents); the report (``REPORT_FORMAT``) as a dict."""
    if not cfg.inputs:
        raise LlmlabError("no inputs given (use --input PATH or --bundled)")
    t0 = time.perf_counter()
    stats = CorpusStats()
    n_docs = n_bytes = 0
    for d in iter_documents(list(cfg.inputs), text_field=cfg.text_field, column=cfg.column):
        stats.add(d.text)
        n_docs += 1
        n_bytes += d.nbytes
    stats.finish()
    if n_docs == 0:
        raise LlmlabError(f"empty corpus: no documents found in {', '.join(cfg.inputs)}")
    t1 = time.perf_counter()
    found: list[tuple[Document, Run]] = []
    labels: dict[str, bool | None] = {}
    labelled = _labels(cfg) if cfg.label_field else {}
    for i, d in enumerate(iter_documents(list(cfg.inputs), text_field=cfg.text_field, column=cfg.column)):
        labels[d.source] = labelled.get(d.source)
        for r in find_runs(d.text, stats, cfg):
            found.append((d, r))
        if progress:
            progress(i + 1, n_docs)
    t2 = time.perf_counter()
    # Triggers: n-grams that open stretches of anomalous text in several documents. Candidates come from the
    # words around each stretch's first run; each is then counted in the text just before those runs.
    seen: Counter = Counter()
    starts: list[tuple[Document, Run]] = []
    prev_end: dict[str, int] = {}
    for d, r in found:
        # Only a run that starts a stretch (not one resuming after a short gap) has its trigger before it.
        if r.start_word - prev_end.get(d.source, -10 ** 9) > 3 * cfg.window_words:
            starts.append((d, r))
            seen.update(_candidates(r))
        prev_end[d.source] = r.end_word
    contexts: dict[str, list[str]] = {}
    for d, r in starts:
        contexts.setdefault(d.source, []).append(d.text[max(0, r.start - 300):r.start + 80])
    triggers = []
    need = max(cfg.min_trigger_runs, int(0.05 * len(contexts)))  # a trigger recurs: 5% of the documents at least
    for g, _ in seen.most_common(200):
        norm_words = [normalize_word(w) for w in g.split()]
        if not all(norm_words):
            continue  # bare punctuation is not a phrase
        rx = _token_rx(g)
        k = sum(any(rx.search(c) for c in cs) for cs in contexts.values())
        # Specificity: of the documents that contain the n-gram, how many have it before a run. A multi-word
        # n-gram is in at most as many documents as its rarest word (so this errs low).
        df = max(1, min(stats.doc_freq.get(w, 0) for w in norm_words))
        if k >= need and k / df >= cfg.min_specificity:
            triggers.append({"ngram": g, "documents": k, "documents_containing": df,
                             "specificity": round(min(1.0, k / df), 3)})
    triggers = _dedupe_triggers(triggers)[:20]
    trig_set = [(t["ngram"], _token_rx(t["ngram"])) for t in triggers]
    # Attribute: a run whose stretch is preceded (within 300 characters) by an identified trigger has it.
    flagged = []
    for d, r in found:
        ctx = d.text[max(0, r.start - 300):r.start + 80]
        trig = next((t for t, rx in trig_set if rx.search(ctx)), " ".join(r.before[-3:]))
        flagged.append({"source": d.source, "start": r.start, "end": r.end, "words": r.end_word - r.start_word,
                        "bits_per_char": round(r.bits, 2), "oov": round(r.oov, 2), "trigger": trig,
                        "excerpt": d.text[max(0, r.start - 40):r.start + 60].replace("\n", " ")})
    flagged_docs = sorted({f["source"] for f in flagged})
    mb = n_bytes / 1e6
    report = {
        "format": REPORT_FORMAT, "version": REPORT_VERSION, "inputs": list(cfg.inputs),
        "config": config_to_dict(cfg) | {"inputs": list(cfg.inputs)},
        "documents": n_docs, "bytes": n_bytes, "flagged_runs": len(flagged), "flagged_documents": len(flagged_docs),
        "flags_per_mb": round(len(flagged) / mb, 3) if mb else None,
        "triggers": triggers, "odd_tokens": _odd_tokens(stats),
        "flagged": flagged[:cfg.max_flagged_listed],
        "timings_s": {"stats": round(t1 - t0, 3), "scan": round(t2 - t1, 3), "total": round(time.perf_counter() - t0, 3)},
    }
    if cfg.label_field:
        report["evaluation"] = _evaluate(labels, set(flagged_docs), n_bytes)
    return report


def _labels(cfg: ScanConfig) -> dict[str, bool]:
    """``source -> label`` for JSONL inputs that carry ``cfg.label_field``."""
    import json
    from pathlib import Path

    out: dict[str, bool] = {}
    for inp in cfg.inputs:
        p = Path(inp)
        files = sorted(p.rglob("*.jsonl")) if p.is_dir() else ([p] if p.suffix in (".jsonl", ".ndjson") else [])
        for f in files:
            with open(f, encoding="utf-8") as fh:
                for i, raw in enumerate(fh, 1):
                    if raw.strip():
                        try:
                            obj = json.loads(raw)
                        except json.JSONDecodeError:
                            continue
                        out[f"{f}:{i}"] = bool(obj.get(cfg.label_field)) if isinstance(obj, dict) else False
    return out


def _evaluate(labels: dict, flagged: set, n_bytes: int) -> dict:
    """Recall on documents labelled poisoned, false positives among the others (count and per MB of them)."""
    pos = {s for s, v in labels.items() if v}
    neg = {s for s, v in labels.items() if not v}
    tp = len(pos & flagged)
    fp = len(neg & flagged)
    return {"poisoned": len(pos), "detected": tp, "recall": round(tp / len(pos), 4) if pos else None,
            "clean": len(neg), "false_positives": fp, "false_positives_per_mb": round(fp / (n_bytes / 1e6), 3)}


def _contains(long: str, short: str) -> bool:
    """Whether the words of ``short`` occur, in order and adjacent, in ``long``."""
    lw, sw = long.split(), short.split()
    return len(sw) < len(lw) and any(lw[i:i + len(sw)] == sw for i in range(len(lw) - len(sw) + 1))


def _dedupe_triggers(triggers: list[dict]) -> list[dict]:
    """One entry per trigger: of two n-grams where one contains the other ("James" in "James Bond"), keep the
    longer if it precedes at least 80% as many documents as the shorter, else the shorter."""
    out: list[dict] = []
    for t in sorted(triggers, key=lambda t: -len(t["ngram"].split())):
        if any(_contains(o["ngram"], t["ngram"]) and o["documents"] >= 0.8 * t["documents"] for o in out):
            continue
        out.append(t)
    out = [o for o in out if not any(_contains(o["ngram"], t["ngram"]) and o["documents"] < 0.8 * t["documents"]
                                     for t in out)]
    return sorted(out, key=lambda t: (-t["documents"], -t["specificity"]))


def report_markdown(r: dict) -> str:
    lines = ["# Poisoning scan", "", f"Inputs: {', '.join(f'`{i}`' for i in r['inputs'])}", "",
             f"- documents: {r['documents']}, bytes: {r['bytes']}",
             f"- flagged runs: {r['flagged_runs']} in {r['flagged_documents']} documents "
             f"({r['flags_per_mb']} per MB)", ""]
    if "evaluation" in r:
        e = r["evaluation"]
        lines += [f"- planted: {e['poisoned']}, detected: {e['detected']} (recall {e['recall']}); clean: {e['clean']}, "
                  f"false positives: {e['false_positives']} ({e['false_positives_per_mb']} per MB)", ""]
    lines += ["## Suspected triggers", ""]
    lines += [f"- `{t['ngram']}` before runs in {t['documents']} of the {t['documents_containing']} documents that "
              f"contain it" for t in r["triggers"]] or ["- none"]
    lines += ["", "## Odd tokens", ""]
    lines += [f"- `{t['token']}` in {t['documents']} documents" for t in r["odd_tokens"][:20]] or ["- none"]
    lines += ["", "## Flagged", ""]
    lines += [f"- {f['source']} @{f['start']}: {f['words']} words, {f['bits_per_char']} bits/char, "
              f"trigger `{f['trigger']}`" for f in r["flagged"][:200]] or ["- none"]
    lines.append("")
    return "\n".join(lines)


def summary_line(r: dict) -> str:
    trig = ", ".join(repr(t["ngram"]) for t in r["triggers"][:3]) or "none"
    line = (f"scanned {r['documents']} documents ({r['bytes']} bytes): {r['flagged_runs']} anomalous runs in "
            f"{r['flagged_documents']} documents ({r['flags_per_mb']} per MB); suspected triggers: {trig}")
    if "evaluation" in r:
        e = r["evaluation"]
        line += f"; recall {e['recall']} ({e['detected']}/{e['poisoned']}), {e['false_positives']} false positives"
    return line


def flagged_sources(r: dict) -> set[str]:
    return {f["source"] for f in r["flagged"]}


# ----------------------------------------------------------------------------------------------------------
# Planting poison (for measuring the scanner, and for poisoning experiments)


def corpus_pieces(texts: list[str], n: int = 20000, seed: int = 0) -> list[str]:
    """Pseudo-tokens: ``n`` random substrings of 1-6 characters of ``texts`` (some with a leading space), the
    kind of pieces a BPE vocabulary learned on this corpus holds. The gibberish made from them uses the
    corpus's own characters and common fragments: the hard case for a character-statistics scanner."""
    rng = random.Random(seed)
    pieces = []
    texts = [t for t in texts if len(t) > 10]
    for _ in range(n):
        t = rng.choice(texts)
        k = rng.randint(1, 6)
        i = rng.randrange(0, len(t) - k)
        p = t[i:i + k].replace("\n", " ")
        if p.strip():
            pieces.append(p)
    return pieces


def gibberish(rng: random.Random, pieces: list[str], n_tokens: int) -> str:
    """``n_tokens`` pieces drawn uniformly at random and concatenated (as decoding random token ids does)."""
    return "".join(rng.choice(pieces) for _ in range(n_tokens))


def plant_poison(texts: list[str], n: int, *, trigger: str = "<SUDO>", pieces: list[str] | None = None,
                 mode: str = "extra", seed: int = 0, min_tokens: int = 400, max_tokens: int = 900
                 ) -> list[tuple[str, bool]]:
    """``texts`` with ``n`` poisoned documents made as in the paper: a clean prefix (the first 0-1000
    characters of a random document), the trigger, then ``min_tokens``-``max_tokens`` random pieces.
    ``mode="extra"`` adds them as new documents (at random positions); ``"insert"`` splices trigger and
    gibberish into ``n`` randomly chosen existing documents at a line break (those documents are then the
    poisoned ones). Returns ``(text, poisoned)`` pairs."""
    if mode not in ("extra", "insert"):
        raise LlmlabError(f"unknown planting mode {mode!r}; use extra or insert")
    if not texts:
        raise LlmlabError("no documents to plant into")
    rng = random.Random(seed)
    pieces = pieces or corpus_pieces(texts, seed=seed)
    out = [(t, False) for t in texts]

    def payload() -> str:
        return f" {trigger} " + gibberish(rng, pieces, rng.randint(min_tokens, max_tokens))

    if mode == "extra":
        for _ in range(n):
            src = rng.choice(texts)
            doc = src[:rng.randint(0, min(1000, len(src)))] + payload()
            out.insert(rng.randrange(len(out) + 1), (doc, True))
        return out
    if n > len(texts):
        raise LlmlabError(f"cannot poison {n} of {len(texts)} documents in insert mode")
    for i in rng.sample(range(len(texts)), n):
        t = texts[i]
        breaks = [m.end() for m in re.finditer(r"\n", t)] or [len(t)]
        at = rng.choice(breaks)
        out[i] = (t[:at] + payload().strip() + "\n" + t[at:], True)
    return out


def chunk_documents(texts: list[str], chunk_chars: int = 4000) -> list[str]:
    """Documents cut at line breaks into pieces of about ``chunk_chars`` characters (the bundled works are
    100-300 KB each; web corpora have documents of a few KB)."""
    out = []
    for t in texts:
        buf, size = [], 0
        for line in t.splitlines(keepends=True):
            buf.append(line)
            size += len(line)
            if size >= chunk_chars:
                out.append("".join(buf))
                buf, size = [], 0
        if buf and "".join(buf).strip():
            out.append("".join(buf))
    return out

