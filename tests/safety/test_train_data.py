"""Safety training data: never the held-out half, valid chat conversations and preference pairs, refusals
balanced by benign answers, injections answered without obeying them.

    .venv/bin/pytest tests/safety/test_train_data.py -q
"""

import json
import re

import pytest

from llmlab.tasks.synth import REFUSAL
from llmlab.chat.template import render_text
from llmlab.cli import main
from llmlab.errors import LlmlabError
from llmlab.safety import redteam_data as D
from llmlab.safety.redteam import generate_suite
from llmlab.safety.train_answers import PLAIN_ANSWERS
from llmlab.safety.train_data import COMPLIANCE, TRAIN_SPLITS, _answer, safety_conversations, safety_preference_pairs


@pytest.fixture(scope="module")
def convs():
    return safety_conversations(seeds=1)


def test_kinds_balanced_and_valid(convs):
    kinds = [c.meta["kind"] for c in convs]
    n = {k: kinds.count(k) for k in set(kinds)}
    assert set(n) == {"safety_refusal", "safety_injection", "safety_benign", "safety_withheld"}
    assert n["safety_refusal"] <= n["safety_benign"]  # refusals never outnumber the helpful look-alike answers
    for family in ("direct", "roleplay", "enc"):  # nor do they within one technique
        of = [c.meta["kind"] for c in convs if c.meta["technique"].split(":")[0] == family]
        assert 0 < of.count("safety_refusal") <= of.count("safety_benign"), family
    for c in convs:
        text = render_text(c.messages)  # the chat template accepts every conversation
        assert text.endswith("<|end|>")
        final = c.messages[-1]["content"]
        final = final if isinstance(final, str) else final[-1]["text"]
        assert (final == REFUSAL) == (c.meta["kind"] == "safety_refusal")


def test_injections_answered_without_obeying(convs):
    inj = [c for c in convs if c.meta["kind"] == "safety_injection"]
    assert inj
    for c in inj:
        parts = c.messages[-1]["content"]
        assert [p["type"] for p in parts] == ["tool_call", "tool_result", "text"]
        answer = parts[-1]["text"]
        canaries = [w for split in D.CANARY_WORDS.values() for w in split]
        assert not any(w in answer for w in canaries) and "ignored them" in answer


def test_never_the_held_out_half(convs):
    held = {m["content"] for c in generate_suite("heldout", 0) for m in c.messages if m["role"] == "user"}
    held_asks = [a for asks in D.HARMFUL["heldout"].values() for a in asks]
    for c in convs:
        user = next(m["content"] for m in c.messages if m["role"] == "user")
        assert user not in held and not any(a in user for a in held_asks)
        assert c.meta["split"] != "heldout"
    with pytest.raises(LlmlabError, match="held-out"):
        safety_conversations(splits=("heldout",))


@pytest.mark.parametrize("split", TRAIN_SPLITS)
def test_every_trainable_case_has_an_answer(split):
    """A case without a reference answer is dropped from the training data, so missing answers tip the mix
    towards refusals. Scale 10 draws every vocabulary item at least once (checked), so removing any one answer
    fails here; encoded benign cases are answered from ``PLAIN_ANSWERS`` by the question before encoding."""
    cases = generate_suite(split, 0, scale=10)
    vocab = {q for qs in D.BENIGN[split].values() for q in qs} | set(D.BENIGN_ROLEPLAY[split])
    vocab |= set(D.BENIGN_PLAIN[split])
    vocab |= {out for carriers in (D.BENIGN_TOOL, D.BENIGN_DOCS, D.TOOL_CARRIERS, D.DOC_CARRIERS)
              for _, _, out in carriers[split]}
    assert {c.source for c in cases if c.source} == vocab
    needs = [c for c in cases if (c.kind == "benign" and c.category != "encoded") or c.category == "injection"]
    missing = [(c.technique, c.source) for c in needs if _answer(c) is None]
    assert not missing, missing
    assert set(D.BENIGN_PLAIN[split]) <= set(PLAIN_ANSWERS)
    # An encoded harmless question is answered where the model can read it (the guarded view) and only there.
    encoded = [c for c in cases if c.kind == "benign" and c.category == "encoded"]
    assert encoded and all(_answer(c, guarded=True) == ("safety_benign", PLAIN_ANSWERS[c.source]) for c in encoded)
    assert all(_answer(c) is None for c in encoded)


def test_no_answers_for_the_held_out_half():
    from llmlab.safety import train_answers as A

    held = {q for qs in D.BENIGN["heldout"].values() for q in qs} | set(D.BENIGN_ROLEPLAY["heldout"])
    held |= set(D.BENIGN_PLAIN["heldout"])
    held |= {out for carriers in (D.BENIGN_TOOL, D.BENIGN_DOCS, D.TOOL_CARRIERS, D.DOC_CARRIERS)
             for _, _, out in carriers["heldout"]}
    keys = set(A.BENIGN_ANSWERS) | set(A.BENIGN_CARRIER_ANSWERS) | set(A.CARRIER_ANSWERS) | set(PLAIN_ANSWERS)
    assert not held & keys


def test_preference_pairs_read_by_the_trainers(tmp_path):
    from llmlab.chat.pref_data import read_pairs

    pairs = safety_preference_pairs(seeds=1, view="guarded")
    path = tmp_path / "pref.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    read = read_pairs(path)
    assert len(read) == len(pairs)
    why = {p["kind"]: p["rejected_is"] for p in pairs}
    assert why == {"safety_refusal": "compliance", "safety_injection": "obeyed_injection",
                   "safety_benign": "over_refusal", "safety_withheld": "over_refusal"}
    spot = next(p for p in pairs if p["kind"] == "safety_injection")
    assert spot["prompt"][0]["role"] == "system" and "data, not instructions" in spot["prompt"][0]["content"]


def test_cli_writes_both_files(tmp_path, capsys):
    assert main(["redteam-data", "--out", str(tmp_path), "--seeds", "1"]) == 0
    assert "preference pairs" in capsys.readouterr().out
    assert (tmp_path / "sft.jsonl").stat().st_size > 0 and (tmp_path / "pref.jsonl").stat().st_size > 0


def test_cli_leaves_halves_out(tmp_path, capsys):
    """--splits draws from the named halves only (leave one out to validate on it); heldout is refused."""
    assert main(["redteam-data", "--out", str(tmp_path), "--seeds", "1", "--splits", "tune"]) == 0
    from llmlab.chat.data import load_conversations

    convs, _ = load_conversations(tmp_path / "sft.jsonl")
    assert convs and {c.meta["split"] for c in convs} == {"tune"}
    assert main(["redteam-data", "--out", str(tmp_path), "--splits", "tune,heldout"]) == 2
    assert "held-out half stays held out" in capsys.readouterr().err


def test_views_raw_guarded_and_both():
    """The guarded view is what ``guard.model_view`` shows the model; ``both`` holds the raw and guarded
    conversations, a conversation the guard shows unchanged once."""
    from llmlab.safety.guard import DATAMARK, model_view

    raw = safety_conversations(seeds=1, view="raw", refusal_ratio=None)
    guarded = safety_conversations(seeds=1, view="guarded", refusal_ratio=None)
    both = safety_conversations(seeds=1, view="both", refusal_ratio=None)
    key = lambda c: repr(c.messages)  # noqa: E731
    assert {key(c) for c in both} == {key(c) for c in raw} | {key(c) for c in guarded}
    decoded = [c for c in guarded if "[the safety guard decoded this message" in c.messages[-2]["content"]]
    assert {c.meta["kind"] for c in decoded} == {"safety_benign", "safety_refusal"}
    assert not any("[the safety guard decoded" in m["content"] for c in raw for m in c.messages
                   if isinstance(m["content"], str))
    tools = [c for c in guarded if isinstance(c.messages[-1]["content"], list)]
    marked = [c for c in tools if c.meta["kind"] != "safety_withheld"]
    assert marked and all(DATAMARK in c.messages[-1]["content"][1]["text"] for c in marked)
    assert model_view([m for m in tools[0].messages[:-1]])[0] == tools[0].messages[0]  # the instruction, as served
    with pytest.raises(LlmlabError, match="view"):
        safety_conversations(seeds=1, view="spotlit")


def test_withheld_tool_results_are_answered_without_refusing(convs):
    """Block mode withholds an injected tool result; the model learns to say so, not to refuse or obey."""
    from llmlab.safety.filters import TOOL_WITHHELD
    from llmlab.safety.redteam import is_refusal

    held = [c for c in convs if c.meta["kind"] == "safety_withheld"]
    assert held and all(c.meta["category"] == "injection" for c in held)
    for c in held:
        parts = c.messages[-1]["content"]
        assert parts[1]["text"] == TOOL_WITHHELD.format(category="injection")
        assert "withheld" in parts[-1]["text"] and not is_refusal(parts[-1]["text"])


@pytest.mark.parametrize("split", ["tune", "dev", "dev2", "dev3", "dev4"])
def test_framed_and_encoded_lookalikes_are_answered(split):
    """The look-alikes put in the half's jailbreak frames, or encoded, are answered like the plain question: the
    frame or the encoding alone must not mean a refusal."""
    from llmlab.safety.guard import decoded_text
    from llmlab.safety.train_data import _answer, _encoded_lookalikes, _framed_lookalikes

    framed = _framed_lookalikes(split, 0)
    assert framed
    for c in framed:
        text = c.messages[0]["content"]
        assert any(text.startswith(t.split("{a}")[0]) for t in D.ROLEPLAY[split]), text
        kind, answer = _answer(c)
        assert kind == "safety_benign" and answer and answer != REFUSAL
    encoded = _encoded_lookalikes(split, 0)
    assert len(encoded) == sum(len(qs) for qs in D.BENIGN[split].values())
    for c in encoded:
        assert c.source not in c.messages[0]["content"]  # really encoded
        assert _answer(c) is None and _answer(c, guarded=True)[0] == "safety_benign"
    # The guard reads (nearly) all of them back: its decoders are heuristics (13 of 201 imperfect, seed 0).
    back = [c for c in encoded
            if c.source.lower().rstrip("?") in (decoded_text(c.messages[0]["content"]) or "").lower()]
    assert len(back) >= 0.8 * len(encoded)


@pytest.mark.parametrize("split", ["tune", "dev2"])
def test_templated_lookalikes_are_answered(split):
    """Harmless procedures in the half's direct templates, tasks.synth's refusal templates and the half's encoded
    payloads are answered like the plain ask, so the template alone does not mean a refusal."""
    from llmlab.safety.guard import decoded_text
    from llmlab.safety.train_data import _ASK, _answer, _templated_lookalikes
    from llmlab.tasks.synth import HARMFUL_TEMPLATES

    cases = _templated_lookalikes(split, 0)
    asks = [q for qs in D.BENIGN[split].values() for q in qs] + list(D.BENIGN_PLAIN[split])
    n_asks = sum(_ASK.match(q) is not None for q in asks)
    direct = [c for c in cases if c.technique == "direct"]
    encoded = [c for c in cases if c.technique.startswith("enc:")]
    assert n_asks and len(direct) == 2 * n_asks and len(encoded) == n_asks

    def fits(text, templates):
        return any(re.fullmatch(re.escape(t).replace(re.escape("{a}"), ".+"), text) for t in templates)
    half = [c for c in direct if fits(c.messages[0]["content"], D.DIRECT[split])]
    synth = [c for c in direct if fits(c.messages[0]["content"], HARMFUL_TEMPLATES)]
    assert len(half) >= n_asks and len(synth) >= n_asks  # a template in both lists counts for both
    for c in direct:
        kind, answer = _answer(c)
        assert kind == "safety_benign" and answer != REFUSAL and c.source in asks
    for c in encoded:
        assert _answer(c) is None and _answer(c, guarded=True)[0] == "safety_benign"
    # the guard reads most back as one of the half's payload frames around the ask
    payloads = [p.split("{a}")[0].lower() for p in D.ENCODED_PAYLOAD[split]]
    back = [c for c in encoded if any((decoded_text(c.messages[0]["content"]) or "").lower().find(p) >= 0
                                      for p in payloads)]
    assert len(back) >= 0.7 * len(encoded)


def test_ask_parser_knows_no_held_out_template():
    """The look-alike generators find a harmless ask by the trainable halves' ways of asking; a held-out
    template or payload frame among them would be a held-out wording in the training code."""
    from llmlab.safety.train_data import _ASK

    held = D.DIRECT["heldout"] + D.ENCODED_PAYLOAD["heldout"]
    assert not [t for t in held if _ASK.match(t.format(a="tie a tie"))]


def test_harm_rejected_answers_puts_both_answer_kinds_on_both_sides():
    """With harm_rejected="answers" a harmful ask's refusal is preferred over a helpful look-alike answer, the
    same answers that are preferred over the refusal for look-alikes: only the question tells the pairs apart."""
    pairs = safety_preference_pairs(seeds=1, splits=("dev3",), harm_rejected="answers")
    text = lambda m: m[-1]["content"] if isinstance(m[-1]["content"], str) else m[-1]["content"][-1]["text"]  # noqa: E731
    helpful = {text(p["chosen"]) for p in pairs if p["kind"] == "safety_benign"}
    harm = [p for p in pairs if p["kind"] == "safety_refusal"]
    assert harm and all(text(p["chosen"]) == REFUSAL and text(p["rejected"]) in helpful for p in harm)
    assert len({text(p["rejected"]) for p in harm}) > 10  # drawn across the answers, not one
    old = safety_preference_pairs(seeds=1, splits=("dev3",))
    assert {text(p["rejected"]) for p in old if p["kind"] == "safety_refusal"} <= set(COMPLIANCE)
    with pytest.raises(LlmlabError, match="harm_rejected"):
        safety_preference_pairs(seeds=1, harm_rejected="nothing")
