"""Retrieval: documents of every kind (a PDF made in the test), chunks with source and position, BM25 search and
the relevance threshold, incremental updates, versioned index folders, bad input, the search tool, citations,
and ``llmlab index`` / ``llmlab index search``.

    .venv/bin/pytest tests/tools/test_retrieval.py -q
"""

import json

import pytest

from llmlab.cli import main
from llmlab.errors import LlmlabError
from llmlab.tools.retrieval import (
    NO_RESULTS, Index, IndexConfig, SearchConfig, build_index, chunk_text, citations, format_hits, read_manifest,
    search_text, search_tool, source_list, strip_citations, terms,
)

TOWN = ("Quellport is a town in the province of Ostrelin. Quellport was founded in 1643.\n\n"
        "The Vandry River flows through Quellport. The mayor of Quellport is Talia Brunsk.")


def make_pdf(path, pages):
    import matplotlib

    matplotlib.use("pdf")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with PdfPages(path) as pdf:
        for text in pages:
            fig = plt.figure(figsize=(6, 4))
            fig.text(0.05, 0.5, text, fontsize=9)
            pdf.savefig(fig)
            plt.close(fig)
    return path


@pytest.fixture
def docs(tmp_path):
    d = tmp_path / "docs"
    (d / "sub").mkdir(parents=True)
    (d / "quellport.md").write_text(f"# Quellport\n\n{TOWN}\n")
    (d / "sub" / "brindle.html").write_text(
        "<html><head><title>Brindle Works</title><style>p {color: red}</style><script>var x = 'bells';</script>"
        "</head><body><h1>Brindle Works</h1><p>Brindle Works is a company that makes lanterns.</p>"
        "<p>Brindle Works was founded in 1874 by Oren Vask.</p></body></html>")
    (d / "people.jsonl").write_text(
        json.dumps({"title": "Mira Solk", "text": "Mira Solk is a cartographer. Mira Solk was born in 1902."}) + "\n"
        + json.dumps({"text": "Ivo Dell is a baker from Quellport."}) + "\n")
    (d / "notes.txt").write_text("Shopping list: bread, candles.\n")
    make_pdf(d / "report.pdf", ["Zorvania exports copper pots.", "The Gessel Guild makes violins."])
    (d / "image.png").write_bytes(b"\x89PNG\r\n")
    (d / ".hidden.md").write_text("secret")
    return d


# ----------------------------------------------------------------------------------------------------------


def test_terms_and_chunks():
    assert terms("Who founded Brindle Works in 1874?") == ["founded", "brindle", "works", "1874"]
    assert terms("大型语言模型") == ["大型", "型语", "语言", "言模", "模型"]
    text = "A" * 10 + " first.\n\nSecond paragraph here.\n\n" + "Long sentence one. " * 20
    spans = chunk_text(text, 60)
    assert all(b - a <= 60 for a, b in spans)
    assert text[spans[0][0]:spans[0][1]] == "A" * 10 + " first.\n\nSecond paragraph here."  # packed paragraphs
    assert all(text[a:b] == text[a:b].strip() and text[a:b] for a, b in spans)


def test_every_kind_of_document_is_indexed_with_source_and_position(docs, tmp_path):
    s = build_index(docs, tmp_path / "idx", IndexConfig(chunk_chars=120))
    assert s["files"] == 5 and s["read"] == 5 and s["unreadable"] == []
    assert {x["source"] for x in s["skipped"]} == {"image.png"}  # the hidden file is not even listed
    idx = Index.load(tmp_path / "idx")
    by_source = {}
    for c in idx.chunks:
        by_source.setdefault(c.source, []).append(c)
    assert set(by_source) == {"quellport.md", "sub/brindle.html", "people.jsonl", "notes.txt", "report.pdf"}
    q = by_source["quellport.md"]
    assert [c.position["chunk"] for c in q] == list(range(len(q))) and q[0].position["line"] == 1
    raw = (docs / "quellport.md").read_text()
    assert all(raw[c.position["start"]:c.position["end"]] == c.text for c in q)  # positions point into the file
    html = " ".join(c.text for c in by_source["sub/brindle.html"])
    assert "lanterns" in html and "color" not in html and "bells" not in html  # no style, no script
    assert [c.position["record"] for c in by_source["people.jsonl"]] == [1, 2]
    assert by_source["people.jsonl"][0].text.startswith("Mira Solk\n\n")
    assert [(c.position["page"], c.text) for c in by_source["report.pdf"]] == [
        (1, "Zorvania exports copper pots."), (2, "The Gessel Guild makes violins.")]

    hits = idx.search("When was Brindle Works founded?", k=3)
    assert hits[0].chunk.source == "sub/brindle.html" and "1874" in hits[0].chunk.text
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert idx.search("Who makes violins?", k=1)[0].chunk.position["page"] == 2
    assert idx.search("zebra xylophone", k=5) == []


def test_relevance_separates_absent_things(docs, tmp_path):
    build_index(docs, tmp_path / "idx", IndexConfig(chunk_chars=120))
    idx = Index.load(tmp_path / "idx")
    here = idx.search("When was Quellport founded?", k=1)[0]
    assert here.relevance == pytest.approx(1.0)
    absent = idx.search("When was Dravelmoor founded?", k=3)  # "founded" matches, the name matches nothing
    assert absent and max(h.relevance for h in absent) < 0.6
    assert idx.search("When was Dravelmoor founded?", k=3, min_relevance=0.6) == []
    # A paraphrase in plain English does not count against a chunk that names the thing asked about.
    assert idx.search("What is Quellport famous for?", k=1)[0].relevance == pytest.approx(1.0)


def test_incremental_update_reads_only_changed_files(docs, tmp_path):
    out = tmp_path / "idx"
    build_index(docs, out)
    (docs / "notes.txt").write_text("Shopping list: bread, candles, and Vandry River trout.\n")
    (docs / "sub" / "brindle.html").unlink()
    (docs / "new.md").write_text("The Orrin Bridge crosses the Vandry River.")
    s = build_index(docs, out)
    assert (s["read"], s["unchanged"], s["removed"]) == (2, 3, ["sub/brindle.html"])
    idx = Index.load(out)
    assert {c.source for c in idx.chunks} == {"quellport.md", "people.jsonl", "notes.txt", "report.pdf", "new.md"}
    assert [c.id for c in idx.chunks] == list(range(len(idx.chunks)))
    assert idx.search("Orrin Bridge", k=1)[0].chunk.source == "new.md"
    assert build_index(docs, out)["read"] == 0  # nothing changed: nothing read
    s = build_index(docs, out, IndexConfig(chunk_chars=60))  # another chunk size: every file read again
    assert s["read"] == 5 and read_manifest(out)["config"] == {"chunk_chars": 60}


def test_bad_input_is_one_clear_error(docs, tmp_path):
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (docs / "bad.jsonl").write_text('{"text": "ok"}\n{oops\n')
    (docs / "binary.txt").write_bytes(b"abc\x00\x01\x02")
    s = build_index(docs, tmp_path / "idx")
    bad = {u["source"]: u["reason"] for u in s["unreadable"]}
    assert set(bad) == {"broken.pdf", "bad.jsonl", "binary.txt"}
    assert "not a readable PDF" in bad["broken.pdf"] and "line 2" in bad["bad.jsonl"]
    assert s["files"] == 5  # the rest are indexed
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "photo.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(LlmlabError, match=r"empty: no documents to index \(supported: .*; skipped 1 other files"):
        build_index(tmp_path / "empty", tmp_path / "x")
    with pytest.raises(LlmlabError, match="not found"):
        build_index(tmp_path / "missing", tmp_path / "x")
    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    (only_bad / "b.pdf").write_bytes(b"junk")
    with pytest.raises(LlmlabError, match=r"nothing to index \(b.pdf: not a readable PDF"):
        build_index(only_bad, tmp_path / "y")
    with pytest.raises(LlmlabError, match="index folder not found"):
        Index.load(tmp_path / "nope")
    m = json.loads((tmp_path / "idx" / "index.json").read_text())
    (tmp_path / "idx" / "index.json").write_text(json.dumps({**m, "version": 99}))
    with pytest.raises(LlmlabError, match=r"index.json: index version 99, this llmlab reads version 1; rebuild"):
        Index.load(tmp_path / "idx")
    with pytest.raises(LlmlabError, match="rebuild"):
        build_index(docs, tmp_path / "idx")
    assert build_index(docs, tmp_path / "idx", rebuild=True)["read"] == 5
    (tmp_path / "notindex").mkdir()
    (tmp_path / "notindex" / "x.txt").write_text("mine")
    with pytest.raises(LlmlabError, match="not an llmlab index"):
        build_index(docs, tmp_path / "notindex")


def test_search_tool_citations_and_sources(docs, tmp_path):
    build_index(docs, tmp_path / "idx", IndexConfig(chunk_chars=120))
    idx = Index.load(tmp_path / "idx")
    tool = search_tool(idx, SearchConfig(k=2, max_chars=90))
    text = tool.fn(query="Who is the mayor of Quellport?")
    assert text.startswith("[1] ") and "Talia Brunsk" in text
    assert len(text.splitlines()) == 1  # the other Quellport chunk lacks "mayor": below the relevance threshold
    assert tool.fn(query="Who is the mayor of Dravelmoor?") == NO_RESULTS
    assert search_text(idx, "Who is the mayor of Dravelmoor?", SearchConfig(min_relevance=0)) != NO_RESULTS
    hits = idx.search("Who is the mayor of Quellport?", k=2)
    assert format_hits(hits).splitlines()[0] == "[1] " + " ".join(hits[0].chunk.text.split())
    assert format_hits(hits, max_chars=30).splitlines()[0] == "[1] The Vandry River flows ..."
    answer = "Talia Brunsk [1]. Founded in 1643 [2] [1]."
    assert citations(answer) == [1, 2] and strip_citations(answer) == "Talia Brunsk. Founded in 1643."
    src = source_list(answer, hits)
    assert src.splitlines()[0] == "Sources:" and src.splitlines()[1].startswith("[1] quellport.md, chunk ")
    assert source_list("Talia Brunsk [7]", hits).endswith("[7] (no such passage was retrieved)")
    assert source_list("no citation", hits) == ""


# ----------------------------------------------------------------------------------------------------------
# The CLI


def test_index_cli(docs, tmp_path, capsys):
    out = tmp_path / "idx"
    assert main(["index", "--docs", str(docs), "--out", str(out), "--chunk-chars", "120"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["files"] == 5 and s["chunks"] >= 5
    assert main(["index", "--docs", str(docs), "--out", str(out)]) == 0  # an update keeps the chunk size
    assert json.loads(capsys.readouterr().out)["unchanged"] == 5
    assert main(["index", "search", "--index", str(out), "--query", "Who founded Brindle Works?", "--k", "2",
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    top = r["hits"][0]
    assert set(top) == {"rank", "score", "relevance", "source", "position", "text", "chunk_id"}
    assert top["source"] == "sub/brindle.html" and "Oren Vask" in top["text"] and top["score"] > 0
    assert main(["index", "search", "--index", str(tmp_path / "none"), "--query", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none: index folder not found" in err
    assert main(["index", "--docs", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "missing: documents folder or file not found" in capsys.readouterr().err
