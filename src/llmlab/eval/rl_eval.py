"""Evaluations of preference tuning and RL: reward-model accuracy, win rate judged by a reward model, exact match.

    llmlab eval rm --reward-model runs/rm --pairs data/pref/pairs_val.jsonl
    llmlab eval winrate --model runs/dpo --baseline runs/sft --judge runs/rm --prompts data/pref/chat_prompts_val.jsonl
    llmlab eval exact --model runs/grpo --prompts data/pref/tasks_val.jsonl

    from llmlab.eval.rl_eval import rm_accuracy, win_rate, exact_match
    win_rate("runs/dpo", "runs/sft", "runs/rm", "chat_prompts_val.jsonl")   # {"win_rate": ..., "kl_to_baseline": ...}

Each returns a JSON-ready dict (the speedrun report reads them). Win rate: both models answer every held-out
prompt (greedy by default, so the comparison is deterministic); the judge reward model scores each whole
conversation; a win is a higher score, a tie (identical answers or scores) counts one half. Beside it, the
KL from the tuned model to the baseline, KL(pi || pi_base) = E_{y ~ pi}[log pi(y) - log pi_base(y)], is
estimated on answers *sampled* (temperature 1) from the tuned model: nats per answer and per token.
"""

from __future__ import annotations

import torch

from llmlab.utils.device import resolve_device


def rm_accuracy(rm_dir, pairs_path, device: str = "cpu") -> dict:
    """Pairwise accuracy of a reward model on preference pairs, overall and by ``rejected_is`` / ``kind``."""
    device = resolve_device(device)
    from llmlab.chat.pref_data import encode_pairs, read_pairs
    from llmlab.runs import load_reward_model

    rm, tok = load_reward_model(rm_dir, device=device)
    pairs = read_pairs(pairs_path)
    out = {"reward_model": str(rm_dir), "pairs": str(pairs_path)}
    enc, dropped = encode_pairs(pairs, tok, rm.config.max_seq_len)
    out.update(pair_accuracy(rm, enc, tok.pad_id))
    out["dropped_too_long"] = dropped
    for field in ("rejected_is", "kind"):
        groups: dict[str, list] = {}
        for p in pairs:
            if field in p.meta:
                groups.setdefault(str(p.meta[field]), []).append(p)
        if groups:
            out[f"by_{field}"] = {k: round(pair_accuracy(rm, encode_pairs(v, tok, rm.config.max_seq_len)[0],
                                                         tok.pad_id)["pair_accuracy"], 4)
                                  for k, v in sorted(groups.items())}
    return out


@torch.no_grad()
def sequence_kl(policy, ref, tok, prompt_ids: list[list[int]], *, max_new_tokens: int = 64, seed: int = 0) -> dict:
    """KL(policy || ref) on answers sampled from ``policy`` at temperature 1: per answer and per token."""
    from llmlab.infer.completions import pack, sample_completions
    from llmlab.model.sequences import response_token_logprobs

    groups = sample_completions(policy, tok, prompt_ids, n=1, max_new_tokens=max_new_tokens, temperature=1.0,
                                seed=seed)
    comps = [g[0].ids for g in groups]
    ids, mask, _ = pack(prompt_ids, comps, tok.pad_id)
    device = next(policy.parameters()).device
    total, tokens = 0.0, 0.0
    for i in range(0, ids.shape[0], 32):
        chunk, m = ids[i : i + 32].to(device), mask[i : i + 32, :-1].to(device)
        diff = (response_token_logprobs(policy, chunk) - response_token_logprobs(ref, chunk)) * m
        total += diff.sum().item()
        tokens += m.sum().item()
    return {"kl_per_answer": total / len(comps), "kl_per_token": total / max(1.0, tokens)}


def win_rate(model_dir, baseline_dir, judge_dir, prompts_path, *, n: int | None = None, temperature: float = 0.0,
             max_new_tokens: int = 64, seed: int = 0, device: str = "cpu", samples: int = 0) -> dict:
    """Share of held-out prompts where the judge scores ``model``'s answer above ``baseline``'s (ties 1/2)."""
    device = resolve_device(device)
    from llmlab.chat.pref_data import read_prompts
    from llmlab.infer.completions import encode_prompts, sample_completions
    from llmlab.model.heads import score_sequences
    from llmlab.runs import check_same_tokenizer, load_reward_model, load_run

    policy, tok = load_run(model_dir, device=device)
    base, base_tok = load_run(baseline_dir, device=device)
    judge, judge_tok = load_reward_model(judge_dir, device=device)
    check_same_tokenizer(tok, base_tok, f"{model_dir} vs {baseline_dir}")
    check_same_tokenizer(tok, judge_tok, f"{model_dir} vs judge {judge_dir}")
    prompts, _ = encode_prompts(read_prompts(prompts_path), tok, policy.config.max_seq_len)
    prompts = prompts[:n] if n else prompts
    p_ids = [p for p, _ in prompts]
    ctx = judge.config.max_seq_len
    answers = {}
    for name, m in (("model", policy), ("baseline", base)):
        gens = sample_completions(m, tok, p_ids, n=1, max_new_tokens=max_new_tokens, temperature=temperature,
                                  seed=seed)
        answers[name] = [g[0] for g in gens]
    # Scores of the answers (a log-likelihood judge leaves log p(prompt) out, so reward_model/reward_baseline
    # below are answer scores); both models answer the same prompts, so a win compares answers to one prompt.
    scores = {name: score_sequences(judge, [(p + c.ids)[:ctx] for p, c in zip(p_ids, comps)], tok.pad_id,
                                    answer_starts=[len(p) for p in p_ids])
              for name, comps in answers.items()}
    wins = ties = 0.0
    by_kind: dict[str, list[float]] = {}
    for i, (_, prompt) in enumerate(prompts):
        a, b = answers["model"][i], answers["baseline"][i]
        if a.ids == b.ids or scores["model"][i] == scores["baseline"][i]:
            w = 0.5
            ties += 1
        else:
            w = float(scores["model"][i] > scores["baseline"][i])
        wins += w
        by_kind.setdefault(prompt.meta.get("kind", "all"), []).append(w)
    from llmlab.tasks.check import exact_match as matches

    def em(comps):
        checked = [(c, p) for c, (_, p) in zip(comps, prompts) if p.answer is not None]
        return sum(matches(c.text, p.answer) for c, p in checked) / max(1, len(checked))

    out = {
        "model": str(model_dir), "baseline": str(baseline_dir), "judge": str(judge_dir), "n": len(prompts),
        "win_rate": wins / max(1, len(prompts)), "tie_rate": ties / max(1, len(prompts)),
        "reward_model": scores["model"].mean().item(), "reward_baseline": scores["baseline"].mean().item(),
        "stop_rate_model": sum(c.finished for c in answers["model"]) / max(1, len(prompts)),
        "stop_rate_baseline": sum(c.finished for c in answers["baseline"]) / max(1, len(prompts)),
        "exact_match_model": em(answers["model"]), "exact_match_baseline": em(answers["baseline"]),
        "temperature": temperature,
        "by_kind": {k: round(sum(v) / len(v), 4) for k, v in sorted(by_kind.items())},
    }
    kl = sequence_kl(policy, base, tok, p_ids, max_new_tokens=max_new_tokens, seed=seed)
    out["kl_to_baseline"] = kl["kl_per_answer"]
    out["kl_to_baseline_per_token"] = kl["kl_per_token"]
    if samples:
        out["samples"] = [{"prompt": p.prompt[-1]["content"], "model": answers["model"][i].text,
                           "baseline": answers["baseline"][i].text,
                           "score_model": round(scores["model"][i].item(), 3),
                           "score_baseline": round(scores["baseline"][i].item(), 3)}
                          for i, (_, p) in enumerate(prompts[:samples])]
    return out


def exact_match(model_dir, prompts_path, *, n: int | None = None, max_new_tokens: int = 64, device: str = "cpu") -> dict:
    """Greedy exact match of a model on prompts with answers (the verifiable tasks), overall and by kind."""
    device = resolve_device(device)
    from llmlab.chat.pref_data import read_prompts
    from llmlab.infer.completions import encode_prompts
    from llmlab.runs import load_run

    model, tok = load_run(model_dir, device=device)
    prompts, _ = encode_prompts(read_prompts(prompts_path), tok, model.config.max_seq_len)
    prompts = prompts[:n] if n else prompts
    res = exact_match_eval(model, tok, prompts, max_new_tokens=max_new_tokens)
    return {"model": str(model_dir), "prompts": str(prompts_path), **res}


@torch.no_grad()
def pair_accuracy(rm, enc, pad_id: int, batch_size: int = 32) -> dict:
    """Pairwise accuracy and mean Bradley-Terry loss -log sigmoid(r_chosen - r_rejected) of the reward model
    ``rm`` on encoded pairs (``chat.pref_data.encode_pairs``; ties count as wrong)."""
    from llmlab.chat.pref_data import pair_batch
    from llmlab.model.sequences import gather_last

    device = next(rm.parameters()).device
    was_training = rm.training
    rm.eval()
    correct, loss_sum, margins = 0, 0.0, []
    enc = sorted(enc, key=lambda e: max(len(e.chosen), len(e.rejected)))  # batches of similar length pad less; the pairs are scored independently
    for i in range(0, len(enc), batch_size):
        b = pair_batch(enc[i : i + batch_size], pad_id)
        r = gather_last(rm(b["input_ids"].to(device)), b["last"].to(device))
        n = r.shape[0] // 2
        margin = r[:n].float() - r[n:].float()  # (n,)
        correct += int((margin > 0).sum())
        loss_sum += -torch.nn.functional.logsigmoid(margin).sum().item()
        margins.append(margin)
    rm.train(was_training)
    m = torch.cat(margins)
    return {"pair_accuracy": correct / len(enc), "bt_loss": loss_sum / len(enc), "margin_mean": m.mean().item(),
            "n_pairs": len(enc)}


@torch.no_grad()
def exact_match_eval(policy, tok, prompts, *, max_new_tokens=64, temperature=0.0, batch=64) -> dict:
    """Exact match of the policy's answers (greedy by default) on ``[(prompt_ids, RLPrompt)]``."""
    from llmlab.infer.completions import sample_completions
    from llmlab.tasks.rewards import exact_match_reward

    hits, stops, by_kind = 0, 0, {}
    for i in range(0, len(prompts), batch):
        chunk = prompts[i : i + batch]
        groups = sample_completions(policy, tok, [p for p, _ in chunk], n=1, max_new_tokens=max_new_tokens,
                                    temperature=temperature, seed=0)
        for (_, prompt), (c,) in zip(chunk, groups):
            ok = exact_match_reward(prompt, c.text) > 0
            hits += ok
            stops += c.finished
            kind = prompt.meta.get("kind", "all")
            k = by_kind.setdefault(kind, [0, 0])
            k[0] += ok
            k[1] += 1
    n = max(1, len(prompts))
    return {"exact_match": hits / n, "stop_rate": stops / n, "n": len(prompts),
            "by_kind": {k: round(v[0] / v[1], 4) for k, v in sorted(by_kind.items())}}
