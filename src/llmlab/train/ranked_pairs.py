"""On-policy preference pairs: the policy's own answers, ranked by a reward model (for DPO).

    llmlab ranked-pairs --model runs/sft --reward-model runs/rm --prompts data/pref/chat_prompts_train.jsonl \
        --out data/pref/pairs_ranked.jsonl
    llmlab dpo --model runs/sft --data data/pref/pairs_ranked.jsonl --out runs/dpo

    from llmlab.train.ranked_pairs import RankedPairsConfig, ranked_pairs
    rows = ranked_pairs(RankedPairsConfig(model="runs/sft", reward_model="runs/rm", prompts="chat_prompts_train.jsonl",
                                          samples=4))   # list of pair dicts; write_ranked_pairs(cfg) writes cfg.out

For every training prompt the policy samples ``samples`` answers (temperature 1, one shared prefill); the
reward model scores each whole conversation; the best-scored answer becomes ``chosen`` and the worst
``rejected`` when their scores differ by at least ``min_margin``. With ``against="greedy"`` the policy's
greedy answer joins the candidates and is the one rejected whenever another answer scores above it (else the
worst is, as before): the pairs then say "move your greedy answer to this better one", which is what a win
rate of greedy answers measures. With ``check_answers`` a prompt whose answer can be checked (it has an
``answer`` and its ``kind``, if given, is one of ``CHECKABLE_KINDS``: numbers, letters, counts, attributions)
ranks answers by exact match first and the reward model's score second: a right answer always beats a wrong
one, whatever the judge says, and such a pair needs no score margin. Answers that did not end their turn with
``<|end|>`` (cut by the token limit, or breaking into another role) are left out: written as a pair they
would read as finished answers.

Why: offline pairs (pref_synth.py) are written by a generator, not by the model, so DPO on them pushes down
text the policy would never say and -- with nothing holding the chosen answers up -- can lower both sides
(likelihood displacement; docs/LOG.md 2026-11-22 and 2026-11-23). Pairs of the policy's own samples keep DPO
on its own distribution (the "on-policy" / RM-ranked DPO of iterative-DPO and rejection-sampling recipes).
The reward model that ranks them is trained on the offline training pairs only, and the prompts are training
prompts, so held-out prompts and held-out pairs stay unseen. Note what it means for evaluation: a win rate
judged by that same reward model then measures, as for PPO, how well DPO optimised the judge's preferences on
new prompts, not an independent judgement.
"""

from __future__ import annotations

import torch

from llmlab.errors import LlmlabError
from llmlab.train.configs import AGAINST, RankedPairsConfig  # noqa: F401 (AGAINST: which answer a pair rejects)
from llmlab.utils.config import require
from llmlab.utils.device import resolve_device


@torch.no_grad()
def ranked_pairs(cfg: RankedPairsConfig) -> list[dict]:
    """Pairs ``{"prompt", "chosen", "rejected", "kind", "rejected_is", "margin"}`` from the policy's own samples
    (see the module docstring); ``rejected_is`` is "rm_ranked", or "wrong" for a checked pair whose rejected
    answer is wrong and chosen one right."""
    from llmlab.chat.pref_data import read_prompts
    from llmlab.model.heads import score_sequences
    from llmlab.runs import check_same_tokenizer, load_reward_model, load_run
    from llmlab.tasks.check import checkable, exact_match
    from llmlab.train.rollout import encode_prompts, sample_completions

    samples, temperature, max_new_tokens, seed = cfg.samples, cfg.temperature, cfg.max_new_tokens, cfg.seed
    against, check_answers, min_margin = cfg.against, cfg.check_answers, cfg.min_margin
    for f in ("model", "reward_model", "prompts"):
        if not getattr(cfg, f):
            raise LlmlabError(f"ranked-pairs needs --{f.replace('_', '-')}")
    device = resolve_device(cfg.device)
    policy, tok = load_run(cfg.model, device=device)
    rm, rm_tok = load_reward_model(cfg.reward_model, device=device)
    check_same_tokenizer(tok, rm_tok, f"{cfg.model} vs reward model {cfg.reward_model}")
    prompts, _ = encode_prompts(read_prompts(cfg.prompts), tok, policy.config.max_seq_len)
    prompts = prompts[: cfg.n] if cfg.n else prompts
    ctx = rm.config.max_seq_len
    rows = []
    for start in range(0, len(prompts), 64):
        chunk = prompts[start : start + 64]
        p_ids = [p for p, _ in chunk]
        groups = sample_completions(policy, tok, p_ids, n=samples, max_new_tokens=max_new_tokens,
                                    temperature=temperature, seed=seed * 7919 + start)
        if against == "greedy":
            greedy = sample_completions(policy, tok, p_ids, n=1, max_new_tokens=max_new_tokens, temperature=0.0)
            groups = [g[:1] + group for g, group in zip(greedy, groups)]  # the greedy answer first
        for (pid, prompt), group in zip(chunk, groups):
            usable = [c for c in group if c.finished and c.ids and c.ids[-1] == tok.end_id and c.text.strip()]
            answers: dict[str, list[int]] = {}
            for c in usable:  # finished answers only, one per distinct text
                answers.setdefault(c.text.strip(), c.ids)
            if len(answers) < 2:
                continue
            texts = list(answers)
            scores = score_sequences(rm, [(pid + answers[t])[:ctx] for t in texts], tok.pad_id,
                                     answer_starts=[len(pid)] * len(texts))  # the answers' scores, not log p(prompt)
            right = ([exact_match(t, prompt.answer) for t in texts] if check_answers and checkable(prompt)
                     else [False] * len(texts))
            keys = [(r, float(s)) for r, s in zip(right, scores)]  # right answers first, then the judge's score
            best = max(range(len(texts)), key=keys.__getitem__)
            worst = min(range(len(texts)), key=keys.__getitem__)
            if against == "greedy" and usable[0] is group[0] and best != 0:  # texts[0] is the greedy answer
                worst = 0  # a better answer than the greedy one exists: reject the greedy one
            margin = float(scores[best] - scores[worst])
            checked = right[best] and not right[worst]
            if not checked and (right[worst] or margin < min_margin):
                continue  # two right answers (no reason to prefer one), or too close to call
            rows.append({"prompt": prompt.prompt, "chosen": texts[best], "rejected": texts[worst],
                         "kind": prompt.meta.get("kind", "unknown"), "rejected_is": "wrong" if checked else "rm_ranked",
                         "margin": round(margin, 4)})
    return rows


def write_ranked_pairs(cfg: RankedPairsConfig) -> dict:
    """Write ``ranked_pairs(cfg)`` to ``cfg.out`` as JSONL; returns a summary (counts, kinds, mean margin)."""
    from collections import Counter

    from llmlab.chat.pref_data import write_jsonl

    require(cfg, "ranked-pairs")
    rows = ranked_pairs(cfg)
    write_jsonl(cfg.out, rows)
    return {"out": str(cfg.out), "n_pairs": len(rows), "kinds": dict(sorted(Counter(r["kind"] for r in rows).items())),
            "rejected_is": dict(sorted(Counter(r["rejected_is"] for r in rows).items())),
            "margin_mean": sum(r["margin"] for r in rows) / max(1, len(rows))}
