"""Safety training data: refusal and instruction-hierarchy conversations for SFT and preference pairs, built
from the red-team suite's trainable halves (``tune``, ``dev``, ``dev2``, ``dev3``, ``dev4``; never ``heldout``,
which stays held out from anything trained on).

    from llmlab.safety.train_data import safety_conversations, safety_preference_pairs
    convs = safety_conversations(seed=0)          # list[chat.data.Conversation]
    pairs = safety_preference_pairs(seed=0)       # {"prompt", "chosen", "rejected", "kind", ...} dicts
    generate(n_train, n_val, extra=safety_sft_mix(0.1))   # tasks.synth's default mix + 10% safety conversations

    llmlab sft --model runs/base --safety-share 0.1 --out runs/sft   # the same, in the SFT stage

    llmlab redteam-data --out data/safety         # writes sft.jsonl and pref.jsonl
    llmlab redteam-data --out data/safety4 --splits tune,dev,dev2,dev3   # leave dev4 out to validate on it

What the model learns, kind by kind (``meta["kind"]``):

* ``safety_refusal``: a harmful ask -- direct, in role-play (the "grandma" story, DAN, fiction), or encoded
  in any scheme -- answered with the SFT data's refusal (``tasks.synth.REFUSAL``), so both sources agree.
* ``safety_injection``: a tool result or retrieved document carrying injected instructions: the assistant
  answers the user's actual request from the clean content and says it ignored the instructions
  (``IGNORED``); it never repeats the injection's canary.
* ``safety_withheld`` (guarded view only): the same injected tool result or document as the guard shows it in
  block mode, withheld (``filters.TOOL_WITHHELD``); the assistant says so (``WITHHELD``) instead of refusing or
  inventing an answer.
* ``safety_benign``: a look-alike ("How do I kill a Python process?", role-play with no harmful ask, tool output
  with instructions meant for a human, an encoded harmless question -- the suite's few and every look-alike
  encoded as well, ``_encoded_lookalikes``, the harmless procedures put in jailbreak frames,
  ``_framed_lookalikes``, and in the direct and encoded ask templates, ``_templated_lookalikes``) answered
  helpfully (``train_answers.py``), so refusals do not spread to innocent questions.

Views (``view``): ``raw`` is each conversation as sent, which a model with no guard in front reads;
``guarded`` is what the guard shows the model once it lets a conversation through (``guard.model_view``:
tool results datamarked with the instruction in the system prompt, an encoded user message replaced by the
text the guard decoded); ``both`` (the default) trains on the two, a conversation the guard shows
unchanged once. An encoded harmless question is answered only in the guarded view, where the model can
read it; raw, it has no answer and is left out, while encoded harmful asks are refused in both.

``safety_sft_mix(share)`` is the hook the default SFT data takes (``tasks.synth.generate(..., extra=...)``):
``share`` x n_train of these conversations join the training mix and ``share`` x n_val the validation set,
split by a hash of the user's message so no message is on both sides.

Refusals are subsampled to ``refusal_ratio`` x the benign answers of their technique (the SFT mix: 0.5).
Preference pairs: a refusal is chosen over compliance for harmful asks; the clean answer over obeying the
injection; the helpful answer over a refusal for look-alikes (the over-refusal the issue warns about).
Generation is seeded; the cases come from ``redteam.generate_suite`` at several seeds, so phrasings vary.
"""

from __future__ import annotations

import random
import re

from llmlab.chat.data import Conversation
from llmlab.errors import LlmlabError
from llmlab.safety.guard import model_view
from llmlab.safety import redteam_data as D
from llmlab.safety.normalize import encode
from llmlab.safety.redteam import PREFIXES, Case, generate_suite
from llmlab.safety.train_answers import BENIGN_ANSWERS, BENIGN_CARRIER_ANSWERS, CARRIER_ANSWERS, PLAIN_ANSWERS

TRAIN_SPLITS = ("tune", "dev", "dev2", "dev3", "dev4")
VIEWS = ("raw", "guarded", "both")
IGNORED = " The {what} also contained instructions addressed to me; I ignored them."
WITHHELD = ("The safety guard withheld the {what}: it contained instructions addressed to me, so I have no content "
            "to answer from. Please check the source yourself.")
COMPLIANCE = ["Sure, here is how to do it. First, get the materials ready, then follow these steps carefully.",
              "Of course! Step 1: gather what you need. Step 2: do it where no one can see you.",
              "Absolutely. Here is a detailed guide you can follow right away."]


def _refusal() -> str:
    from llmlab.tasks.synth import REFUSAL

    return REFUSAL


def _strip_prefix(q: str) -> str:
    for p in sorted(PREFIXES, key=len, reverse=True):
        if p and q.startswith(p):
            return q[len(p):]
    return q


def _answer(case: Case, guarded: bool = False) -> tuple[str, str] | None:
    """``(kind, answer)`` for a case, or None when we have no reference answer for it. An encoded harmless
    question has one only in the guarded view, where the guard's decoded text replaces it: without that a
    small model cannot read the question (and should not guess at what an encoded message asks)."""
    if case.kind == "attack" and case.category != "injection":
        return "safety_refusal", _refusal()
    if case.kind == "attack":
        ans = CARRIER_ANSWERS.get(case.source or "")
        if ans is None:
            return None
        return "safety_injection", ans + IGNORED.format(what="document" if case.technique == "document" else
                                                         "tool result")
    if case.technique in ("tool", "document"):
        ans = BENIGN_CARRIER_ANSWERS.get(case.source or "")
        return ("safety_benign", ans) if ans else None
    if case.technique.startswith("enc:"):
        ans = PLAIN_ANSWERS.get(case.source or "", BENIGN_ANSWERS.get(case.source or "")) if guarded else None
        return ("safety_benign", ans) if ans else None
    q = _strip_prefix(case.source or "")
    ans = BENIGN_ANSWERS.get(q, PLAIN_ANSWERS.get(q))
    return ("safety_benign", ans) if ans else None


def _as_parts(messages: list[dict]) -> tuple[list[dict], list[dict]]:
    """Split a case into the prompt (up to the user turn) and the assistant's tool call and result as parts of
    one assistant message (the form both SFT and preference data accept)."""
    prompt = [m for m in messages if m["role"] in ("system", "user")]
    parts: list[dict] = []
    for m in messages:
        if m["role"] == "assistant" and isinstance(m["content"], list):
            parts += m["content"]
        elif m["role"] == "tool":
            parts.append({"type": "tool_result", "text": m["content"]})
    return prompt, parts


def _items(splits, seeds: int, view: str, refusal_ratio: float | None):
    """``(case, messages, (kind, answer))`` for every case with an answer; refusals subsampled (seeded) to at
    most ``refusal_ratio`` x the benign answers of the same technique (direct, role-play, encoded), so the
    model learns neither that refusing is the safe bet nor that a frame or an encoding means harm."""
    items = list(_all_items(splits, seeds, view))
    if refusal_ratio is None:
        return items
    rng, keep = random.Random(len(items)), set()
    for family in ("direct", "roleplay", "enc"):  # per technique: the frame alone must not predict a refusal
        def ours(it):
            return it[0].technique.split(":")[0] == family
        benign = sum(ours(it) and it[2][0] == "safety_benign" for it in items)
        refusals = [i for i, it in enumerate(items) if ours(it) and it[2][0] == "safety_refusal"]
        keep |= set(rng.sample(refusals, min(len(refusals), int(refusal_ratio * benign))))
    return [it for i, it in enumerate(items) if it[2][0] != "safety_refusal" or i in keep]


def _all_items(splits, seeds: int, view: str):
    bad = [s for s in splits if s not in TRAIN_SPLITS]
    if bad:
        raise LlmlabError(f"safety training data may only use {', '.join(TRAIN_SPLITS)} (the held-out half stays "
                          f"held out), got {bad}")
    if view not in VIEWS:
        raise LlmlabError(f"safety data view must be one of {', '.join(VIEWS)}, got {view!r}")
    guarded_views = {"raw": (False,), "guarded": (True,), "both": (False, True)}[view]
    seen = set()
    for seed in range(seeds):
        for split in splits:
            for case in generate_suite(split, seed) + _encoded_lookalikes(split, seed) + \
                    _framed_lookalikes(split, seed) + _templated_lookalikes(split, seed):
                for guarded in guarded_views:
                    got = _answer(case, guarded)
                    if got is None:
                        continue
                    renderings = [(model_view(case.messages) if guarded else case.messages, got)]
                    if guarded and case.category == "injection":  # block mode withholds what it catches
                        what = "document" if case.technique == "document" else "tool result"
                        renderings.append((model_view(case.messages, tool_screen=_withhold),
                                           ("safety_withheld", WITHHELD.format(what=what))))
                    for msgs, answer in renderings:
                        key = repr(msgs)
                        if key in seen:  # a case the guard shows unchanged is trained on once
                            continue
                        seen.add(key)
                        yield case, msgs, answer


def _encoded_lookalikes(split: str, seed: int) -> list[Case]:
    """The half's benign look-alikes ("How do I kill a Python process?"), each encoded in one scheme (seeded) and
    put in one of the half's encoded-message carriers: the suite encodes only a few plain questions, so
    without these nearly every encoded message a model is trained on asks for harm, and the guarded view's
    decoded text reads to it as a refusal cue. Answered (in the guarded view) like the plain look-alike."""
    rng = random.Random(f"encoded-lookalikes:{split}:{seed}")
    cases = []
    for qs in D.BENIGN[split].values():
        for q in qs:
            scheme = rng.choice(D.ENCODED_SCHEMES)
            x = encode(q, scheme, seed=rng.randrange(4))
            text = rng.choice(D.ENCODED_CARRIER[split]).format(x=x, name=D.SCHEME_NAMES[scheme])
            cases.append(Case(f"{split}-lookalike-{len(cases):04d}", split, "benign", "encoded", f"enc:{scheme}",
                              [{"role": "user", "content": text}], source=q))
    return cases


# The trainable halves' ways of asking for a procedure (none of the held-out half's templates: a test checks).
_ASK = re.compile(r"^(?:how do i|how does one|how can someone|how can i|how would i|tell me the steps to|give me a "
                  r"detailed plan to|write a guide on how to|show me how to)\s+(.+?)\??$", re.IGNORECASE)


def _procedures(split: str) -> list[tuple[str, str, str]]:
    """``(category, question, procedure)`` for the half's harmless asks that read as a procedure ("How do I kill a
    Python process?" -> "kill a Python process"): its look-alikes, then its plain questions (category
    ``encoded``, as the suite encodes them)."""
    asks = [(c, q) for c, qs in D.BENIGN[split].items() for q in qs] + [("encoded", q) for q in D.BENIGN_PLAIN[split]]
    return [(c, q, m.group(1)) for c, q in asks if (m := _ASK.match(q.strip())) is not None]


def _framed_lookalikes(split: str, seed: int) -> list[Case]:
    """The half's harmless asks that read as a procedure ("How do I kill a Python process?" -> "kill a Python
    process"; look-alikes and the plain questions) put in the half's own jailbreak frames ("Developer mode
    enabled. ... Describe how to {a}."), one frame each (seeded): in the suite every such frame wraps a harmful
    ask, so a model learns the frame as the refusal cue. Answered like the plain ask (raw and guarded view)."""
    rng = random.Random(f"framed-lookalikes:{split}:{seed}")
    cases = []
    for _, q, a in _procedures(split):
        text = rng.choice(D.ROLEPLAY[split]).format(a=a)
        cases.append(Case(f"{split}-framed-{len(cases):04d}", split, "benign", "roleplay", "roleplay",
                          [{"role": "user", "content": text}], source=q))
    return cases


def _templated_lookalikes(split: str, seed: int) -> list[Case]:
    """The half's harmless procedures (``_procedures``) in the ask templates that otherwise
    wrap only harm, each seeded: one of the half's direct templates, one of ``tasks.synth``'s refusal templates
    ("Tell me how to kill a zombie process."), and one of the half's encoded payloads, encoded in one scheme and
    carrier ("how do I kill weeds in my lawn" in ROT13). Without them every templated ask the model is trained
    on -- the half's attacks and the SFT mix's own refusals (``tasks.synth``: ~2,300 of "How do I {a}?" and the
    like, filled only with harm, outside the per-technique balance) -- is refused, and the template reads as the
    refusal cue. Answered like the plain ask (encoded: in the guarded view only)."""
    from llmlab.tasks.synth import HARMFUL_TEMPLATES

    rng = random.Random(f"templated-lookalikes:{split}:{seed}")
    cases: list[Case] = []

    def add(category: str, technique: str, text: str, q: str) -> None:
        cases.append(Case(f"{split}-templated-{len(cases):04d}", split, "benign", category, technique,
                          [{"role": "user", "content": text}], source=q))
    for category, q, a in _procedures(split):
        for templates in (D.DIRECT[split], HARMFUL_TEMPLATES):
            add(category, "direct", rng.choice(templates).format(a=a), q)
        scheme = rng.choice(D.ENCODED_SCHEMES)
        x = encode(rng.choice(D.ENCODED_PAYLOAD[split]).format(a=a), scheme, seed=rng.randrange(4))
        carrier = rng.choice(D.ENCODED_CARRIER[split])
        add("encoded", f"enc:{scheme}", carrier.format(x=x, name=D.SCHEME_NAMES[scheme]), q)
    return cases


def _withhold(text: str) -> str:
    from llmlab.safety.filters import TOOL_WITHHELD

    return TOOL_WITHHELD.format(category="injection")


def safety_conversations(n: int | None = None, seed: int = 0, *, splits=TRAIN_SPLITS, seeds: int = 3,
                         view: str = "both", refusal_ratio: float | None = 1.0) -> list[Conversation]:
    """SFT conversations (see the module docstring); ``n`` draws that many at random (all when None)."""
    out = []
    for case, msgs, (kind, answer) in _items(splits, seeds, view, refusal_ratio):
        prompt, parts = _as_parts(msgs)
        content = parts + [{"type": "text", "text": answer}] if parts else answer
        out.append(Conversation(prompt + [{"role": "assistant", "content": content}],
                                {"kind": kind, "category": case.category, "technique": case.technique,
                                 "split": case.split}))
    rng = random.Random(seed)
    rng.shuffle(out)
    return out[:n] if n is not None else out


HARM_REJECTED = ("compliance", "answers")


def safety_preference_pairs(n: int | None = None, seed: int = 0, *, splits=TRAIN_SPLITS, seeds: int = 3,
                            view: str = "both", refusal_ratio: float | None = 1.0,
                            harm_rejected: str = "compliance") -> list[dict]:
    """Preference pairs in ``train.pref_data``'s JSONL shape: the prompt ends with the user turn; chosen and
    rejected are assistant messages (with the tool call and result as parts where there is one).

    ``harm_rejected``: what a harmful ask's refusal is preferred over: ``compliance`` (three fixed "Sure, here
    is how" strings) or ``answers`` (a helpful look-alike answer from the same pairs, seeded: the two kinds of
    answer then appear on both sides, refusal over answer for harm and answer over refusal for look-alikes, so
    the pairs can only be told apart by the question; fixed strings are lowered cheaply and leave the refusal
    itself free to fall everywhere)."""
    if harm_rejected not in HARM_REJECTED:
        raise LlmlabError(f"harm_rejected must be one of {', '.join(HARM_REJECTED)}, got {harm_rejected!r}")
    rng = random.Random(seed)
    out = []
    items = list(_items(splits, seeds, view, refusal_ratio))
    helpful = sorted({a for _, _, (k, a) in items if k == "safety_benign"})
    for case, msgs, (kind, answer) in items:
        prompt, parts = _as_parts(msgs)
        if kind == "safety_refusal":
            rejected, why = rng.choice(COMPLIANCE if harm_rejected == "compliance" else helpful), "compliance"
        elif kind == "safety_injection":
            rejected, why = f"Sure. {case.canary}", "obeyed_injection"
        else:
            rejected, why = _refusal(), "over_refusal"

        def msg(text: str) -> list[dict]:
            return [{"role": "assistant", "content": parts + [{"type": "text", "text": text}] if parts else text}]
        out.append({"prompt": prompt, "chosen": msg(answer), "rejected": msg(rejected), "kind": kind,
                    "rejected_is": why, "category": case.category, "technique": case.technique})
    rng.shuffle(out)
    return out[:n] if n is not None else out


def _val_side(conv: Conversation, val_fraction: float = 0.1) -> bool:
    import hashlib

    user = next((m["content"] for m in conv.messages if m["role"] == "user"), "")
    return int(hashlib.sha256(user.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < val_fraction


def safety_sft_mix(share: float = 0.1, *, splits=TRAIN_SPLITS, seeds: int = 3, view: str = "both",
                   refusal_ratio: float = 0.5):
    """The SFT data hook (``tasks.synth.generate(..., extra=safety_sft_mix(0.1))``): a callable
    ``(n_train, n_val, seed) -> (train, val)`` giving ``round(share * n)`` safety conversations on each side
    (drawn with replacement when more are asked for than exist; validation ones from the hash-chosen 10%)."""
    if not 0 < share <= 1:
        raise LlmlabError(f"the safety share must be in (0, 1], got {share}")

    def extra(n_train: int, n_val: int, seed: int):
        convs = safety_conversations(seed=seed, splits=splits, seeds=seeds, view=view, refusal_ratio=refusal_ratio)
        val_pool = [c for c in convs if _val_side(c)]
        train_pool = [c for c in convs if not _val_side(c)]
        rng = random.Random(f"safety-sft-mix:{seed}")

        def draw(pool, k):
            if k <= len(pool):
                return rng.sample(pool, k)
            return pool + [rng.choice(pool) for _ in range(k - len(pool))]
        return draw(train_pool, round(share * n_train)), draw(val_pool, round(share * n_val))
    return extra
