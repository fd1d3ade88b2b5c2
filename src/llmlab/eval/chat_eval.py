"""Chat evaluation: does the assistant keep the format, and does it get checkable questions right?

    llmlab eval chat --model runs/sft --base runs/base        # JSON: format rate, exact match, base vs SFT

    from llmlab.eval.chat_eval import evaluate_chat, evaluate_base, chat_report
    ev = evaluate_chat(model, tok, held_out_convs)            # {"format_rate": ..., "exact_match": ..., ...}
    report = chat_report("runs/sft", base_run="runs/base")    # what the speedrun's report card reads

Held-out conversations (by default the bundled generator's validation set, ``llmlab.tasks.synth``) are
prompted up to their last user turn and answered greedily by the inference engine.

* **Format rate**: the share of answers that end with ``<|end|>`` within the token limit and stay in the
  assistant role: no ``<|user|>``, ``<|system|>``, ``<|assistant|>`` or ``<|bos|>`` before it. Generation also
  stops on those tokens, so a model that starts writing the user's next turn is caught, not run on.
* **Exact match**: on the checkable kinds (arithmetic, spell, reverse, letter and word counts, who-said,
  which-play), the answer text (before ``<|end|>``) compared with the item's ``answer`` after
  ``synth.normalize_answer`` (case, spaces, a final period). Other kinds are reported per kind but not in
  the headline number.
* **Base model**: a document completer does not know the chat format, so its exact match is measured the way
  base models are (GPT-3 style few-shot): three solved examples of the same kind from the *training* items,
  ``Question: ...\\nAnswer: ...``, then the held-out question; the answer is the first line generated. The same
  model prompted with the chat template is also reported (``exact_match_chat_template``, ``format_rate``).
"""

from __future__ import annotations

from collections import Counter, defaultdict

from llmlab.errors import LlmlabError
from llmlab.tasks.check import CHECKABLE_KINDS, exact_match


def _engine(model, tok):
    from llmlab.infer import Engine

    return Engine(model, eos_token_ids=[tok.end_id])


def _role_breaking_ids(tok) -> set[int]:
    from llmlab.chat.template import stop_token_ids

    return set(stop_token_ids(tok)) - {tok.end_id}


def generate_replies(model, tok, prompts: list[list[dict]], max_new_tokens: int = 64, batch_size: int = 32) -> list[dict]:
    """Greedy assistant replies to conversations (each ending with a user turn). Each result has ``text``
    (before ``<|end|>``), ``token_ids``, ``finish_reason`` (``stop`` / ``length``) and ``format_ok``."""
    from llmlab.chat.template import render_prompt
    from llmlab.infer import SamplingParams

    engine = _engine(model, tok)
    ctx = model.config.max_seq_len
    breaking = _role_breaking_ids(tok)
    params = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens, stop_token_ids=tuple(sorted(breaking)))
    ids = []
    for m in prompts:
        try:
            ids.append(render_prompt(m, tok, max_len=max(8, ctx - max_new_tokens)))
        except LlmlabError:  # a tiny context: give the prompt all of it but one token
            ids.append(render_prompt(m, tok, max_len=ctx - 1))
    out = []
    for start in range(0, len(ids), batch_size):
        for r in engine.generate(ids[start : start + batch_size], params):
            s = r.samples[0]
            toks = list(s.token_ids)
            ended = s.finish_reason == "stop" and bool(toks) and toks[-1] == tok.end_id
            clean = not any(t in breaking for t in toks)
            body = toks[:-1] if ended else [t for t in toks]
            out.append({"text": tok.decode([t for t in body if not tok.is_special(t)]), "token_ids": toks,
                        "finish_reason": "stop" if ended else ("role" if not clean else "length"),
                        "format_ok": ended and clean})
    return out


def _prompt_and_answer(conv):
    msgs = conv.messages
    last = max(i for i, m in enumerate(msgs) if m["role"] == "user")
    return msgs[: last + 1], conv.meta.get("answer")


def evaluate_chat(model, tok, convs, max_new_tokens: int = 64, batch_size: int = 32, n_samples: int = 8) -> dict:
    """Format rate over all ``convs`` and exact match on the checkable single-question ones (see the module doc)."""
    prompts, answers, kinds = [], [], []
    for c in convs:
        p, a = _prompt_and_answer(c)
        prompts.append(p)
        answers.append(a)
        kinds.append(c.meta.get("kind", "unknown"))
    replies = generate_replies(model, tok, prompts, max_new_tokens, batch_size)
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for r, a, k in zip(replies, answers, kinds):
        r["kind"], r["answer"] = k, a
        if a is not None and k != "multi":
            r["correct"] = exact_match(r["text"], a)
            by_kind[k].append(r["correct"])
    checked = [ok for k in CHECKABLE_KINDS for ok in by_kind.get(k, [])]
    n = len(replies)
    return {
        "n": n,
        "format_rate": sum(r["format_ok"] for r in replies) / n if n else 0.0,
        "finish_reasons": dict(Counter(r["finish_reason"] for r in replies)),
        "exact_match": sum(checked) / len(checked) if checked else 0.0,
        "n_checkable": len(checked),
        "exact_match_by_kind": {k: round(sum(v) / len(v), 4) for k, v in sorted(by_kind.items())},
        "n_by_kind": {k: len(v) for k, v in sorted(by_kind.items())},
        "samples": [{"prompt": p[-1]["content"], "answer": r["answer"], "reply": r["text"],
                     "finish_reason": r["finish_reason"]} for p, r in zip(prompts[:n_samples], replies[:n_samples])],
    }


def few_shot_prompt(question: str, shots: list[tuple[str, str]]) -> str:
    return "".join(f"Question: {q}\nAnswer: {a}\n\n" for q, a in shots) + f"Question: {question}\nAnswer:"


def evaluate_base(model, tok, convs, shots: int = 3, max_new_tokens: int = 32, batch_size: int = 32,
                  chat_template: bool = True, seed: int = 0) -> dict:
    """Exact match of a base model, few-shot (see the module doc); plus, with ``chat_template``, the same
    model prompted exactly like the assistant (its format rate and exact match)."""
    from llmlab.infer import SamplingParams
    from llmlab.tasks.synth import generate

    items = [(c, *_prompt_and_answer(c)) for c in convs if c.meta.get("kind") in CHECKABLE_KINDS]
    # Solved examples come from the training side of the split, so no held-out item is shown.
    train, _ = generate(n_train=600, n_val=0, seed=seed + 1)
    pool: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for c in train:
        if c.meta.get("kind") in CHECKABLE_KINDS and len(c.messages) == 2:
            pool[c.meta["kind"]].append((c.messages[0]["content"], c.meta["answer"]))
    ctx = model.config.max_seq_len
    prompts = []
    for c, p, a in items:
        ex = pool[c.meta["kind"]][:shots]
        ids = [tok.bos_id] + tok.encode(few_shot_prompt(p[-1]["content"], ex))
        prompts.append(ids[-(ctx - max_new_tokens):])
    engine = _engine(model, tok)
    params = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens, ignore_eos=True)
    by_kind: dict[str, list[bool]] = defaultdict(list)
    samples = []
    for start in range(0, len(prompts), batch_size):
        outs = engine.generate(prompts[start : start + batch_size], params)
        for (c, p, a), r in zip(items[start : start + batch_size], outs):
            text = tok.decode([t for t in r.samples[0].token_ids if not tok.is_special(t)])
            first = text.strip().split("\n")[0]
            ok = exact_match(first, a)
            by_kind[c.meta["kind"]].append(ok)
            if len(samples) < 8:
                samples.append({"prompt": p[-1]["content"], "answer": a, "reply": first})
    checked = [ok for v in by_kind.values() for ok in v]
    res = {
        "exact_match": sum(checked) / len(checked) if checked else 0.0,
        "n_checkable": len(checked),
        "exact_match_by_kind": {k: round(sum(v) / len(v), 4) for k, v in sorted(by_kind.items())},
        "shots": shots,
        "samples": samples,
    }
    if chat_template:
        ev = evaluate_chat(model, tok, convs, max_new_tokens=max_new_tokens, batch_size=batch_size, n_samples=4)
        res.update(format_rate=ev["format_rate"], exact_match_chat_template=ev["exact_match"])
    return res


def held_out_conversations(n: int = 200, data: str = "bundled", seed: int = 0):
    """The first ``n`` held-out conversations: the bundled generator's validation set, or a JSONL file."""
    if data == "bundled":
        from llmlab.tasks.synth import generate

        _, val = generate(n_train=0, n_val=n, seed=seed)
        return val
    from llmlab.chat.data import load_conversations

    convs, _ = load_conversations(data)
    return convs[:n]


def chat_report(model_run: str, base_run: str | None = None, n: int = 200, data: str = "bundled",
                max_new_tokens: int = 64, device: str = "cpu") -> dict:
    """Format rate and exact match of a chat run (and of its base), as the speedrun's report card wants them:
    ``sft_format_rate``, ``sft_exact_match``, ``base_exact_match`` plus the detailed dicts."""
    from llmlab.utils.device import resolve_device

    device = resolve_device(device)
    from llmlab.runs import load_run

    convs = held_out_conversations(n, data)
    model, tok = load_run(model_run, device=device)
    sft = evaluate_chat(model, tok, convs, max_new_tokens=max_new_tokens)
    out = {"model": str(model_run), "n": len(convs), "sft_format_rate": sft["format_rate"],
           "sft_exact_match": sft["exact_match"], "sft": sft}
    if base_run:
        bmodel, btok = load_run(base_run, device=device)
        base = evaluate_base(bmodel, btok, convs, max_new_tokens=max_new_tokens)
        out.update(base_model=str(base_run), base_exact_match=base["exact_match"], base=base)
    return out
