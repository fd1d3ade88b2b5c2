"""Quality filters: each rule fires on a document built to break it, can be switched off, and the bundled
Shakespeare works pass the defaults.

    .venv/bin/pytest tests/data/test_filters.py -q
"""

import pytest
from conftest import prose, words

from llmlab.data.corpus import read_work
from llmlab.data.clean import clean_text
from llmlab.data.filters import FILTERS, FilterConfig, document_stats, quality_filter, remove_boilerplate_lines


def _lines(ws, per_line=12, prefix="", suffix="."):
    return "\n".join(prefix + " ".join(ws[i: i + per_line]) + suffix for i in range(0, len(ws), per_line))


def _bad_docs():
    w = words(240, 1)
    passage = " ".join(words(10, 99))
    top = []
    for i, x in enumerate(w):
        top.append(x)
        if i % 3 == 2:
            top += ["the", "king"]
    dup_ngram_line = " ".join(w[:60] + [passage] + w[60:100] + [passage] + w[100:140] + [passage] + w[140:180]
                              + [passage] + w[180:] + [passage])
    return {
        "too_few_words": ("just a handful of words here, nothing more", {}),
        "too_many_words": (prose(240, 2), {"max_words": 100}),
        "mean_word_length": (_lines([x[:2] for x in w]), {}),
        "symbol_ratio": (_lines([("#" + x) if i % 4 == 0 else x for i, x in enumerate(w)]), {}),
        "digit_ratio": (_lines([f"{i * 7919 % 100000:05d}" if i % 3 == 0 else x for i, x in enumerate(w)]), {}),
        "alpha_words": (_lines(["+++" if i % 3 == 0 else x for i, x in enumerate(w)]), {}),
        "ellipsis_lines": (_lines(w, suffix=" ..."), {}),
        "bullet_lines": (_lines(w, prefix="- "), {}),
        "duplicate_lines": (prose(120, 3) + "\n" + "\n".join([" ".join(words(12, 4))] * 8), {}),
        "top_ngram": (" ".join(top), {}),
        "duplicate_ngrams": (dup_ngram_line, {}),
    }


def test_clean_prose_passes():
    assert quality_filter(prose(300, 0), FilterConfig()) is None


@pytest.mark.parametrize("rule", [r for r in FILTERS if r != "boilerplate_lines"])
def test_each_rule_fires_and_can_be_switched_off(rule):
    text, changes = _bad_docs()[rule]
    cfg = FilterConfig(**changes)
    assert quality_filter(text, cfg) == rule, document_stats(text)
    off = FilterConfig(**changes, disabled=(rule,))
    assert quality_filter(text, off) != rule


def test_boilerplate_lines_removed_and_counted():
    body = prose(120, 5)
    text = "Home | About\nThis site uses cookies. Read our Cookie Policy.\n" + body + \
        "\nPlease enable JavaScript to view the comments.\nLorem ipsum dolor sit amet.\n© 2024 All rights reserved."
    out, n = remove_boilerplate_lines(text)
    assert n == 4
    assert out == "Home | About\n" + body
    assert remove_boilerplate_lines(body) == (body, 0)


def test_ngram_stats_measure_repetition():
    s = document_stats(" ".join(["the cat sat on the mat"] * 20))
    assert s["duplicate_ngram_chars"][0] == pytest.approx(19 / 20)  # every copy after the first
    assert s["top_ngram_chars"][0] > 0.2
    s = document_stats(prose(300, 7))
    assert max(s["duplicate_ngram_chars"]) == 0.0 and max(s["top_ngram_chars"]) < 0.05


@pytest.mark.parametrize("work", ["hamlet", "sonnets", "phoenix_and_the_turtle", "comedy_of_errors"])
def test_shakespeare_passes_default_filters(work):
    # All 42 works are checked end to end in test_pipeline.py::test_bundled_corpus_passes_untouched.
    assert quality_filter(clean_text(read_work(work)), FilterConfig()) is None
