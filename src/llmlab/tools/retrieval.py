"""Retrieval over the user's own documents: an index of chunks that keep their source and position, BM25 search
(``bm25s``), incremental updates, and the ``search`` tool the assistant calls.

    llmlab index --docs my_docs/ --out my_index          # build, or update: only new and changed files are read
    llmlab index search --index my_index --query "Who founded Brindle Works?" --k 5 --json

    from llmlab.tools.retrieval import build_index, Index, search_tool
    summary = build_index("my_docs", "my_index")          # counts: files indexed, unchanged, removed, unreadable
    index = Index.load("my_index")
    hits = index.search("Who founded Brindle Works?", k=5)   # [Hit(rank, score, chunk)], best first
    hits[0].chunk.source, hits[0].chunk.position, hits[0].chunk.text

Documents. A folder (read recursively, hidden files skipped) or one file: ``.txt``, ``.md``/``.markdown``,
``.html``/``.htm`` (text without tags, scripts or styles), ``.jsonl`` (one document per line: its ``text``,
``content`` or ``body`` field, after a ``title``) and ``.pdf`` (``pypdf``, page by page). A file that cannot be
read (a broken or encrypted PDF, binary data, an unreadable file) is counted and listed in the summary; the
others are indexed. Other file types are listed as skipped.

Chunks. Each document is cut at blank lines into paragraphs, which are packed into chunks of at most
``chunk_chars`` characters (a longer paragraph is cut at sentence ends); a chunk never spans two pages or two
JSONL records. ``position``: ``chunk`` (its number within the file), ``start``/``end`` (character offsets in the
page's or record's text), ``line`` (1-based, of its start), and ``page`` (PDF) or ``record`` (JSONL line).

Search. Terms are lower-cased words of two or more letters or digits (and single digits), without English stop
words, and every CJK character pair (Chinese has no spaces), scored by BM25 (bm25s's Lucene variant, k1 1.5,
b 0.75). BM25 ranks; whether a chunk is *relevant* is ``Index.relevance``: the share of the query's information
(the IDF of its terms) the chunk contains, where a term the collection never saw counts fully if it is a name
(capitalised inside the query, or not a common English word) and not at all if it is a plain-English
paraphrase. A question about something the documents never mention then scores below 0.6 even when its common
words match, while one about what they do mention scores 1.0 (docs/LOG.md). The ``search`` tool keeps the hits
at or above ``SearchConfig.min_relevance`` and says "no results" when none are; the assistant is taught to
answer that it does not know then.

The index folder. ``index.json`` (``"format": "llmlab-index"``, ``"version"``, the chunking settings, every
file's SHA-256, size and chunk count, the unreadable and skipped files), ``chunks.jsonl`` and ``bm25/`` (bm25s's
own files, rebuilt from all chunks on every update -- BM25's statistics are over the whole collection; only
changed files are read again). A missing folder, or one written by another version, is a one-line error.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from llmlab.errors import LlmlabError

INDEX_FORMAT, INDEX_VERSION = "llmlab-index", 1
SUFFIXES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown", ".html": "html",
            ".htm": "html", ".jsonl": "jsonl", ".pdf": "pdf"}
TEXT_FIELDS = ("text", "content", "body")
# Stop words: function words that match every document (scikit-learn's list is longer; these cover questions).
STOP_WORDS = frozenset("""a an and are as at be been but by can could did do does for from had has have he her
his how i if in into is it its me my no not of on or our she so than that the their them then there these they
this to was we were what when where which who whom whose why will with would you your about after before which
tell please says said""".split())
WORD = re.compile(r"[^\W_]{2,}|\d")  # words of 2+ letters/digits, and single digits
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")


def query_names(query: str) -> set[str]:
    """Lower-cased words written with a capital inside a sentence of the query (not its first word): names."""
    out = set()
    for sentence in re.split(r"[.?!]\s+", query):
        words = re.findall(r"[^\W_][\w'-]*", sentence)
        out.update(w.lower() for w in words[1:] if w[0].isupper())
    return out


@functools.lru_cache(maxsize=1)
def background_words() -> frozenset[str]:
    """Common English words: those that occur at least twice in the bundled corpus (~15,000). A query word the
    documents lack but English has is a paraphrase, not a name of something absent. Read once (~1 s)."""
    from collections import Counter

    from llmlab.data.corpus import list_works, read_work

    counts: Counter = Counter()
    for w in list_works():
        counts.update(re.findall(r"[a-z]{2,}", read_work(w.id).lower()))
    return frozenset(w for w, n in counts.items() if n >= 2)


@dataclass
class IndexConfig:
    chunk_chars: int = 400  # the most characters in one chunk (a paragraph longer than this is cut)

    def __post_init__(self):
        if self.chunk_chars < 40:
            raise LlmlabError(f"chunk_chars must be at least 40, got {self.chunk_chars}")


@dataclass
class Chunk:
    id: int
    source: str  # path relative to the indexed folder (or the file's name)
    position: dict
    text: str


@dataclass
class Hit:
    rank: int  # 1 = best
    score: float  # BM25
    chunk: Chunk
    relevance: float = 1.0  # the share of the query's information (IDF) the chunk contains, 0..1

    def to_dict(self) -> dict:
        return {"rank": self.rank, "score": round(self.score, 4), "relevance": round(self.relevance, 4),
                "source": self.chunk.source,
                "position": self.chunk.position, "text": self.chunk.text, "chunk_id": self.chunk.id}


# ----------------------------------------------------------------------------------------------------------
# Terms


def terms(text: str) -> list[str]:
    """The search terms of a text (see the module doc)."""
    low = text.lower()
    out = [w for w in WORD.findall(CJK.sub(" ", low)) if w not in STOP_WORDS]
    for run in CJK.findall(low):
        out += [run[i:i + 2] for i in range(len(run) - 1)] if len(run) > 1 else [run]
    return out


# ----------------------------------------------------------------------------------------------------------
# Reading documents: each file -> units (text, base position): pages of a PDF, records of a JSONL file, or the
# whole text


class _HTMLText(HTMLParser):
    BLOCK = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section",
             "article", "header", "footer", "pre", "blockquote", "title", "hr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "noscript", "template"):
            self.skip += 1
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "noscript", "template"):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)

    def text(self) -> str:
        raw = "".join(self.parts)
        paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", raw)]
        return "\n\n".join(p for p in paras if p)


def _read_text_file(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise LlmlabError("binary data, not text")
    return data.decode("utf-8", errors="replace").replace("\r\n", "\n")


def read_document(path: Path) -> list[tuple[str, dict]]:
    """``[(text, base position)]`` of one file; ``LlmlabError`` (the reason) when it cannot be read."""
    kind = SUFFIXES[path.suffix.lower()]
    try:
        if kind == "pdf":
            return _read_pdf(path)
        text = _read_text_file(path)
    except OSError as e:
        raise LlmlabError(f"cannot read it ({e.strerror or e})") from None
    if kind == "html":
        p = _HTMLText()
        p.feed(text)
        p.close()
        return [(p.text(), {})]
    if kind == "jsonl":
        units = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                raise LlmlabError(f"line {n} is not valid JSON") from None
            body = next((obj[k] for k in TEXT_FIELDS if isinstance(obj, dict) and isinstance(obj.get(k), str)), None)
            if body is None:
                raise LlmlabError(f"line {n} has no string field {' / '.join(TEXT_FIELDS)}")
            title = obj.get("title") if isinstance(obj.get("title"), str) else ""
            units.append(((title + "\n\n" if title else "") + body, {"record": n}))
        return units
    return [(text, {})]


def _read_pdf(path: Path) -> list[tuple[str, dict]]:
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed-file warnings: the summary reports them
    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            raise LlmlabError("the PDF is encrypted")
        return [(page.extract_text() or "", {"page": i}) for i, page in enumerate(reader.pages, 1)]
    except LlmlabError:
        raise
    except Exception as e:  # noqa: BLE001 -- pypdf raises many kinds for a broken file; each is "unreadable"
        raise LlmlabError(f"not a readable PDF ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") \
            from None


def chunk_text(text: str, chunk_chars: int) -> list[tuple[int, int]]:
    """``[(start, end)]`` character spans of ``text``'s chunks (see the module doc)."""
    paras = [(m.start(), m.end()) for m in re.finditer(r"\S(?:.*\S)?(?:\n(?!\s*\n).*\S)*", text)]
    pieces: list[tuple[int, int]] = []
    for a, b in paras:
        while b - a > chunk_chars:  # cut a long paragraph at the last sentence end that fits, else at a space
            window = text[a:a + chunk_chars]
            cut = max(window.rfind(". "), window.rfind("? "), window.rfind("! "), window.rfind("。"))
            cut = cut + 1 if cut > chunk_chars // 4 else window.rfind(" ")
            cut = cut if cut > 0 else chunk_chars
            pieces.append((a, a + cut))
            a += cut
            while a < b and text[a].isspace():
                a += 1
        if b > a:
            pieces.append((a, b))
    chunks: list[tuple[int, int]] = []
    for a, b in pieces:  # pack whole paragraphs (or pieces) while they fit
        if chunks and b - chunks[-1][0] <= chunk_chars:
            chunks[-1] = (chunks[-1][0], b)
        else:
            chunks.append((a, b))
    return chunks


def file_chunks(path: Path, source: str, config: IndexConfig) -> list[dict]:
    """One file's chunks as dicts (without ids); ``LlmlabError`` when it cannot be read."""
    out = []
    for text, base in read_document(path):
        for a, b in chunk_text(text, config.chunk_chars):
            pos = {"chunk": len(out), "start": a, "end": b, "line": text.count("\n", 0, a) + 1, **base}
            out.append({"source": source, "position": pos, "text": text[a:b]})
    return out


def discover(docs: Path) -> tuple[list[tuple[Path, str]], list[dict]]:
    """``([(file, source name)], skipped)``: the files to index under ``docs``, and the others with a reason."""
    if not docs.exists():
        raise LlmlabError(f"{docs}: documents folder or file not found")
    if docs.is_file():
        files = [(docs, docs.name)]
    else:
        files = [(p, p.relative_to(docs).as_posix()) for p in sorted(docs.rglob("*"))
                 if p.is_file() and not any(part.startswith(".") for part in p.relative_to(docs).parts)]
    keep, skipped = [], []
    for p, name in files:
        if p.suffix.lower() in SUFFIXES:
            keep.append((p, name))
        else:
            skipped.append({"source": name, "reason": f"unsupported file type {p.suffix or '(none)'}"})
    return keep, skipped


# ----------------------------------------------------------------------------------------------------------
# Building and updating


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(index_dir: str | Path) -> dict:
    """``index.json`` of an index folder, checked: a missing folder or file, or another format or version, is a
    one-line ``LlmlabError`` naming the file."""
    d = Path(index_dir)
    path = d / "index.json"
    if not d.is_dir():
        raise LlmlabError(f"{d}: index folder not found (build one with `llmlab index --docs PATH --out {d}`)")
    if not path.is_file():
        raise LlmlabError(f"{path}: not found; {d} is not an llmlab index (build one with `llmlab index`)")
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        raise LlmlabError(f"{path}: unreadable index manifest ({e})") from None
    if not isinstance(m, dict) or m.get("format") != INDEX_FORMAT:
        raise LlmlabError(f"{path}: not an llmlab index (format {m.get('format') if isinstance(m, dict) else None!r})")
    if m.get("version") != INDEX_VERSION:
        raise LlmlabError(f"{path}: index version {m.get('version')!r}, this llmlab reads version {INDEX_VERSION}; "
                          "rebuild it (`llmlab index --docs PATH --out INDEX --rebuild`)")
    return m


def _read_chunks(index_dir: Path) -> list[Chunk]:
    path = index_dir / "chunks.jsonl"
    if not path.is_file():
        raise LlmlabError(f"{path}: missing; the index is incomplete (rebuild it)")
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                d = json.loads(line)
                out.append(Chunk(int(d["id"]), d["source"], d["position"], d["text"]))
            except (ValueError, KeyError, TypeError):
                raise LlmlabError(f"{path}:{n}: malformed chunk record (rebuild the index)") from None
    return out


def build_index(docs: str | Path, out: str | Path, config: IndexConfig | None = None, *,
                rebuild: bool = False) -> dict:
    """Index ``docs`` into the folder ``out``, or update the index already there (only new and changed files
    are read). Returns the summary also written into ``index.json``: files indexed (``read``: read this time,
    ``unchanged``: chunks kept), ``removed``, ``unreadable`` (source + reason), ``skipped``, chunk count."""
    import bm25s

    from llmlab.utils.io import atomic_write, write_json

    config = config or IndexConfig()
    docs, out = Path(docs), Path(out)
    old_files, old_chunks = {}, {}
    if out.exists() and not rebuild:
        if not (out / "index.json").is_file() and any(out.iterdir()):
            raise LlmlabError(f"{out}: exists and is not an llmlab index; choose another --out")
        if (out / "index.json").is_file():
            m = read_manifest(out)
            if m.get("config") == asdict(config):  # other chunking: every file is read again
                old_files = m.get("files", {})
                for c in _read_chunks(out):
                    old_chunks.setdefault(c.source, []).append(c)
    files, skipped = discover(docs)
    if not files:
        raise LlmlabError(f"{docs}: no documents to index (supported: {', '.join(sorted(SUFFIXES))})"
                          + (f"; skipped {len(skipped)} other files" if skipped else ""))
    t0 = time.perf_counter()
    entries, chunks, unreadable = {}, [], []
    read = unchanged = 0
    for path, source in files:
        try:
            digest, size = _sha256(path), path.stat().st_size
        except OSError as e:
            unreadable.append({"source": source, "reason": f"cannot read it ({e.strerror or e})"})
            continue
        old = old_files.get(source)
        if old and old.get("sha256") == digest and source in old_chunks:
            mine = [{"source": c.source, "position": c.position, "text": c.text} for c in old_chunks[source]]
            unchanged += 1
        else:
            try:
                mine = file_chunks(path, source, config)
            except LlmlabError as e:
                unreadable.append({"source": source, "reason": str(e)})
                continue
            read += 1
        entries[source] = {"sha256": digest, "size": size, "chunks": len(mine)}
        chunks += mine
    if not chunks:
        listed = "; ".join(f"{u['source']}: {u['reason']}" for u in unreadable[:3]) or "every document is empty"
        raise LlmlabError(f"{docs}: nothing to index ({listed})")
    removed = sorted(set(old_files) - set(entries) - {u["source"] for u in unreadable})
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "chunks.jsonl") as f:
        for i, c in enumerate(chunks):
            f.write(json.dumps({"id": i, **c}, ensure_ascii=False) + "\n")
    retriever = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    retriever.index([terms(c["text"]) or [""] for c in chunks], show_progress=False)
    tmp = out / "bm25.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    retriever.save(str(tmp))
    shutil.rmtree(out / "bm25", ignore_errors=True)
    tmp.rename(out / "bm25")
    summary = {"files": len(entries), "read": read, "unchanged": unchanged, "removed": removed,
               "unreadable": unreadable, "skipped": skipped, "chunks": len(chunks),
               "seconds": round(time.perf_counter() - t0, 3)}
    write_json(out / "index.json", {"format": INDEX_FORMAT, "version": INDEX_VERSION, "docs": str(docs.resolve()),
                                    "config": asdict(config), "files": entries, "last_update": summary})
    return summary


# ----------------------------------------------------------------------------------------------------------
# Searching


@dataclass
class Index:
    path: Path
    chunks: list[Chunk]
    retriever: object = field(repr=False)
    manifest: dict = field(repr=False, default_factory=dict)
    _df: object = field(repr=False, default=None)  # documents per term (numpy), made on first use

    @classmethod
    def load(cls, index_dir: str | Path) -> "Index":
        import bm25s

        d = Path(index_dir)
        m = read_manifest(d)
        chunks = _read_chunks(d)
        if not (d / "bm25").is_dir():
            raise LlmlabError(f"{d / 'bm25'}: missing; the index is incomplete (rebuild it)")
        try:
            retriever = bm25s.BM25.load(str(d / "bm25"))
        except Exception as e:  # noqa: BLE001 -- a damaged bm25s folder: one line, not bm25s's traceback
            raise LlmlabError(f"{d / 'bm25'}: unreadable BM25 index ({type(e).__name__}); rebuild it") from None
        return cls(d, chunks, retriever, m)

    @classmethod
    def from_texts(cls, docs: list[tuple[str, str]], config: IndexConfig | None = None) -> "Index":
        """An index held in memory over ``[(source, text)]`` (plain text, chunked as files are)."""
        import bm25s

        config = config or IndexConfig()
        chunks = []
        for source, text in docs:
            for a, b in chunk_text(text, config.chunk_chars):
                pos = {"chunk": sum(c.source == source for c in chunks), "start": a, "end": b,
                       "line": text.count("\n", 0, a) + 1}
                chunks.append(Chunk(len(chunks), source, pos, text[a:b]))
        if not chunks:
            raise LlmlabError("nothing to index: every document is empty")
        retriever = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
        retriever.index([terms(c.text) or [""] for c in chunks], show_progress=False)
        return cls(Path("<memory>"), chunks, retriever, {"config": {"chunk_chars": config.chunk_chars}})

    def scores(self, query: str):
        """BM25 score of every chunk for ``query`` (numpy, one per chunk)."""
        import numpy as np

        vocab = self.retriever.vocab_dict
        q = [t for t in terms(query) if t in vocab]
        if not q:
            return np.zeros(len(self.chunks), dtype=np.float32)
        return self.retriever.get_scores(q)

    def _idf(self, term: str) -> float:
        """Lucene's IDF of a term; one the collection never saw gets the largest (document frequency 0)."""
        import math

        if self._df is None:
            import numpy as np

            self._df = np.diff(self.retriever.scores["indptr"])  # documents per term id
        t = self.retriever.vocab_dict.get(term)
        df = int(self._df[t]) if t is not None and t < len(self._df) else 0
        n = len(self.chunks)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def relevance(self, query: str, chunk: Chunk) -> float:
        """How much of the query the chunk answers to: the IDF of the query terms it contains over the IDF of all
        of them. A term no document contains counts fully (it names something the collection lacks) unless it is
        a common English word written in lower case ("famous", "living": a paraphrase, see
        ``background_words``). So a question about something the documents never name scores low even when its
        other words ("founded", "river") match."""
        q = set(terms(query))
        if not q:
            return 0.0
        vocab = self.retriever.vocab_dict
        names = query_names(query)
        have = set(terms(chunk.text))
        weight = {t: 0.0 if t not in vocab and t not in names and t in background_words() else self._idf(t)
                  for t in q}
        total = sum(weight.values())
        return sum(w for t, w in weight.items() if t in have) / total if total > 0 else 0.0

    def search(self, query: str, k: int = 5, min_score: float = 0.0, min_relevance: float = 0.0) -> list[Hit]:
        """The ``k`` best chunks by BM25 with a score above 0, at least ``min_score`` and a ``relevance`` of at
        least ``min_relevance``, best first (``rank`` counts the hits kept)."""
        import numpy as np

        if k < 1:
            raise LlmlabError(f"k must be at least 1, got {k}")
        s = self.scores(query)
        order = np.argsort(-s, kind="stable")[:k]
        hits = []
        for i in order:
            if s[i] <= 0 or s[i] < min_score:
                continue
            rel = self.relevance(query, self.chunks[i])
            if rel >= min_relevance:
                hits.append(Hit(len(hits) + 1, float(s[i]), self.chunks[i], rel))
        return hits


# ----------------------------------------------------------------------------------------------------------
# The search tool and citations

NO_RESULTS = "no results: nothing in the documents matches"
CITE = re.compile(r"\[(\d{1,3})\]")


def format_hits(hits: list[Hit], max_chars: int = 0) -> str:
    """What the model sees: ``[n] TEXT`` per hit, one a line (``max_chars`` > 0 cuts each text), or
    ``NO_RESULTS``."""
    if not hits:
        return NO_RESULTS
    lines = []
    for h in hits:
        text = " ".join(h.chunk.text.split())
        if max_chars and len(text) > max_chars:
            text = text[:max_chars].rsplit(" ", 1)[0] + " ..."
        lines.append(f"[{h.rank}] {text}")
    return "\n".join(lines)


@dataclass
class SearchConfig:
    """How the ``search`` tool answers: the ``k`` best chunks with a relevance of at least ``min_relevance``
    (``Index.relevance``: 0.6 separates questions about what the documents name from questions about what they
    never mention, docs/LOG.md), each cut to ``max_chars`` (0 = whole). The speedrun-size model is taught with
    these defaults (its context is 256 tokens); a larger model may read more (``k`` 5, ``max_chars`` 0)."""

    k: int = 3
    min_relevance: float = 0.6
    max_chars: int = 200

    def __post_init__(self):
        if self.k < 1 or not 0 <= self.min_relevance <= 1 or self.max_chars < 0:
            raise LlmlabError("search: k must be >= 1, min_relevance in [0, 1] and max_chars >= 0")


def search_text(index: Index, query: str, config: SearchConfig | None = None) -> str:
    """What the ``search`` tool returns for ``query``."""
    c = config or SearchConfig()
    return format_hits(index.search(query, k=c.k, min_relevance=c.min_relevance), c.max_chars)


def search_tool(index: Index, config: SearchConfig | None = None):
    """The ``search`` tool over ``index``: ``search QUERY`` -> the best relevant chunks as ``[n] TEXT``."""
    from llmlab.tools.runner import Tool

    return Tool(
        name="search",
        description="Search the user's documents. Returns the most relevant passages, numbered [1], [2], ...; "
                    "cite the ones you use by their number. Says so when nothing matches.",
        parameters={"type": "object", "properties": {"query": {"type": "string", "description": "what to look for"}},
                    "required": ["query"], "additionalProperties": False},
        fn=lambda query: search_text(index, query, config),
        native_arg="query",
    )


def citations(text: str) -> list[int]:
    """The chunk numbers an answer cites (``[n]``), in order, without repeats."""
    return list(dict.fromkeys(int(n) for n in CITE.findall(text)))


def strip_citations(text: str) -> str:
    """The answer without its ``[n]`` markers (what exact match compares)."""
    return " ".join(CITE.sub("", text).split()).replace(" .", ".").replace(" ,", ",")


def source_list(answer_text: str, hits: list[Hit]) -> str:
    """``Sources:`` lines for the chunks the answer cites (``[n] source, page/record, chunk``); '' if none."""
    by_rank = {h.rank: h for h in hits}
    lines = []
    for n in citations(answer_text):
        h = by_rank.get(n)
        if h is None:
            lines.append(f"[{n}] (no such passage was retrieved)")
            continue
        pos = h.chunk.position
        where = ", ".join(f"{k} {pos[k]}" for k in ("page", "record") if k in pos)
        lines.append(f"[{n}] {h.chunk.source}" + (f", {where}" if where else "") + f", chunk {pos.get('chunk')}")
    return "Sources:\n" + "\n".join(lines) if lines else ""
