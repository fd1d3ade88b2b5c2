"""Supervised fine-tuning: a base model becomes an assistant by training on conversations, loss on the answers.

    llmlab sft --model runs/base --data bundled --out runs/sft          # the generated default conversations
    llmlab sft --model runs/base --data chats.jsonl --val-data val.jsonl --out runs/sft --epochs 3
    llmlab sft ... --no-packing                                          # one conversation per row, padded

    from llmlab.train.sft import SFTConfig, run
    result = run(SFTConfig(model="runs/base", data="bundled", out="runs/sft"))   # the recipe: SFTConfig.train_defaults
    result = run(SFTConfig(model="runs/base", out="runs/sft2"), SFTConfig.train_config(max_steps=300))

Only the data and the loss mask differ from pretraining; the loop (optimizer, schedule, checkpoints and
resume, DDP, metrics.jsonl, summary.json) is ``llmlab.train.loop``. Each conversation is rendered with the chat
template (``llmlab.chat.template``) into ids and a mask that is 1 on the assistant's tokens; targets elsewhere
are -1 (not scored). Conversations longer than the context follow the template's overflow policy (oldest
exchanges dropped, system prompt kept); one that still does not fit is skipped and counted, since a cut-off
answer would teach the model not to stop.

Packing (default): conversations are laid back to back in rows of ``seq_len`` tokens, never split across
rows; each keeps its own positions (restarting at 0) and a document mask (``document_causal_mask``) stops it
attending to its neighbours, so a packed row computes exactly what separate rows would. The rest of a row is
padding (target -1). ``--no-packing``: one conversation per row, right-padded to the batch's longest.

The run folder is a full model run (weights, ``model_config.json`` and the base run's ``tokenizer/``), so
``llmlab chat --model RUN`` and every later stage read it like any other.
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from llmlab.errors import LlmlabError
from llmlab.train.configs import SFTConfig
from llmlab.train.loop import TrainConfig, TrainResult, resolve_device
from llmlab.utils.config import config_to_dict, require
from llmlab.utils.dist import all_reduce_sum, init_distributed


# ----------------------------------------------------------------------------------------------------------
# Data


def render_examples(convs, tokenizer, seq_len: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """Conversations -> ``[(ids, mask)]`` that fit in ``seq_len + 1`` tokens (inputs and targets are one token
    shifted), and the number skipped because even the overflow policy could not make them fit."""
    from llmlab.chat.template import render

    out, skipped = [], 0
    limit = seq_len + 1
    for c in convs:
        ids, mask = render(c.messages, tokenizer, max_len=limit)
        if len(ids) == limit and (ids[-1] != tokenizer.end_id or not mask[-1]):
            # Cut by the policy's last resort: the answer lost its end. (A conversation ending exactly at the
            # limit with its <|end|> is whole and kept.)
            full, _ = render(c.messages, tokenizer)
            if len(full) > limit:
                skipped += 1
                continue
        if sum(mask[1:]) == 0:
            skipped += 1  # nothing to learn (all assistant turns were dropped)
            continue
        out.append((np.asarray(ids, dtype=np.int64), np.asarray(mask, dtype=np.int8)))
    return out, skipped


class ConversationBatches:
    """A resumable batch source over rendered conversations (see the module docstring).

    Each epoch visits this rank's conversations in a fresh seeded order; the position (epoch, cursor) is the
    whole state, so a resumed run continues with exactly the batch it would have seen.
    Batch keys: ``input_ids``, ``targets`` (-1 = not scored), with packing also ``positions`` and ``doc_ids``
    (-1 on padding), and ``num_tokens`` (real tokens, padding excluded).
    """

    def __init__(self, examples, batch_size: int, seq_len: int, pad_id: int, *, packing: bool = True,
                 seed: int = 0, rank: int = 0, world_size: int = 1):
        if not examples:
            raise LlmlabError("no training conversations fit the context")
        self.examples = examples[rank::world_size] or examples[:1]
        self.B, self.T, self.pad = batch_size, seq_len, pad_id
        self.packing, self.seed = packing, seed
        self.epoch, self.cursor = 0, 0
        self._order = self._perm(0)

    def _perm(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.examples))

    def _next_example(self):
        if self.cursor >= len(self._order):
            self.epoch += 1
            self.cursor = 0
            self._order = self._perm(self.epoch)
        ex = self.examples[int(self._order[self.cursor])]
        self.cursor += 1
        return ex

    def _peek_len(self) -> int:
        if self.cursor >= len(self._order):
            return len(self.examples[int(self._perm(self.epoch + 1)[0])][0]) - 1
        return len(self.examples[int(self._order[self.cursor])][0]) - 1

    @staticmethod
    def _io(ex):
        ids, mask = ex
        targets = np.where(mask[1:] == 1, ids[1:], -1)
        return ids[:-1], targets  # (n-1,), (n-1,)

    def next_batch(self) -> dict[str, torch.Tensor]:
        B, T = self.B, self.T
        if not self.packing:
            rows = [self._io(self._next_example()) for _ in range(B)]
            L = max(len(x) for x, _ in rows)
            inputs = np.full((B, L), self.pad, dtype=np.int64)
            targets = np.full((B, L), -1, dtype=np.int64)
            for r, (x, y) in enumerate(rows):
                inputs[r, : len(x)], targets[r, : len(y)] = x, y
            n = sum(len(x) for x, _ in rows)
            return {"input_ids": torch.from_numpy(inputs), "targets": torch.from_numpy(targets),
                    "num_tokens": torch.tensor(n)}
        inputs = np.full((B, T), self.pad, dtype=np.int64)
        targets = np.full((B, T), -1, dtype=np.int64)
        positions = np.zeros((B, T), dtype=np.int64)
        doc_ids = np.full((B, T), -1, dtype=np.int64)
        n = 0
        for r in range(B):
            t, doc = 0, 0
            # Fill the row while the next conversation fits whole; a row always takes at least one.
            while t == 0 or t + self._peek_len() <= T:
                x, y = self._io(self._next_example())
                k = len(x)
                inputs[r, t : t + k], targets[r, t : t + k] = x, y
                positions[r, t : t + k] = np.arange(k)
                doc_ids[r, t : t + k] = doc
                t, doc, n = t + k, doc + 1, n + k
        return {"input_ids": torch.from_numpy(inputs), "targets": torch.from_numpy(targets),
                "positions": torch.from_numpy(positions), "doc_ids": torch.from_numpy(doc_ids),
                "num_tokens": torch.tensor(n)}

    def rows_per_epoch(self) -> int:
        """Rows one pass over this rank's conversations fills (for an --epochs horizon)."""
        if not self.packing:
            return len(self.examples)
        rows, t = 0, self.T + 1
        for ids, _ in self.examples:
            k = len(ids) - 1
            if t + k > self.T:
                rows, t = rows + 1, 0
            t += k
        return rows

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "cursor": self.cursor, "seed": self.seed, "packing": self.packing,
                "batch_size": self.B, "seq_len": self.T, "n": len(self.examples)}

    def load_state_dict(self, state: dict) -> None:
        mine = self.state_dict()
        for k in ("seed", "packing", "batch_size", "seq_len", "n"):
            if state.get(k, mine[k]) != mine[k]:
                raise LlmlabError(f"cannot resume: the checkpoint's data {k} was {state[k]!r}, now {mine[k]!r}")
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
        self._order = self._perm(self.epoch)


def sft_loss(model, batch: dict) -> tuple[torch.Tensor, dict]:
    """Mean cross-entropy over the scored (assistant) targets of the micro-batch."""
    from llmlab.model.gpt import document_causal_mask

    targets = batch["targets"]
    if "doc_ids" in batch:
        loss = model(batch["input_ids"], positions=batch["positions"],
                     attn_mask=document_causal_mask(batch["doc_ids"]), targets=targets)
    else:
        loss = model(batch["input_ids"], targets=targets)  # right padding: causal attention never looks at it
    return loss, {"target_tokens": (targets >= 0).sum().float()}


@torch.no_grad()
def masked_loss(model, examples, seq_len: int, pad_id: int, batch_size: int = 16) -> tuple[float, int]:
    """(sum of target losses, number of targets) over ``examples``: one row each, padded (exact; no packing)."""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for start in range(0, len(examples), batch_size):
        chunk = [ConversationBatches._io(ex) for ex in examples[start : start + batch_size]]
        L = max(len(x) for x, _ in chunk)
        x = torch.full((len(chunk), L), pad_id, dtype=torch.long)
        y = torch.full((len(chunk), L), -1, dtype=torch.long)
        for r, (a, b) in enumerate(chunk):
            x[r, : len(a)], y[r, : len(b)] = torch.from_numpy(a), torch.from_numpy(b)
        logits = model(x.to(device))
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.to(device).flatten(), ignore_index=-1, reduction="sum")
        total += float(loss)
        count += int((y >= 0).sum())
    return total, count


# ----------------------------------------------------------------------------------------------------------
# The stage


def load_sft_data(scfg: SFTConfig, master: bool = True):
    """``(train_convs, val_convs, info)`` from ``data`` / ``val_data`` (or the bundled generator)."""
    from llmlab.chat.data import load_conversations

    info: dict = {"data": scfg.data}
    if scfg.data == "bundled":
        from llmlab.tasks.synth import generate

        train, val = generate(scfg.n_train, scfg.n_val, scfg.synth_seed)
        info.update(source="llmlab.tasks.synth", seed=scfg.synth_seed)
    else:
        train, bad = load_conversations(scfg.data, skip_bad=scfg.skip_bad)
        info["skipped_bad_lines"] = bad
        val = []
    if scfg.val_data:
        val, vbad = load_conversations(scfg.val_data, skip_bad=scfg.skip_bad)
        info["val_data"] = scfg.val_data
        info["skipped_bad_val_lines"] = vbad
    elif scfg.data != "bundled" and scfg.val_fraction > 0 and len(train) >= 20:
        # Hold out a fixed, seeded share of the conversations (never the same one on both sides).
        order = np.random.default_rng(1234).permutation(len(train))
        n_val = max(1, int(round(scfg.val_fraction * len(train))))
        held = set(order[:n_val].tolist())
        val = [c for i, c in enumerate(train) if i in held]
        train = [c for i, c in enumerate(train) if i not in held]
        info["val_data"] = f"{n_val} conversations held out of --data"
    return train, val, info


def run(scfg: SFTConfig, tcfg: TrainConfig | None = None, *, resume: bool = False,
        progress: bool | None = None) -> TrainResult:
    """Run supervised fine-tuning; returns the loop's result (summary also in RUN/summary.json). ``tcfg``: default
    ``SFTConfig.train_config()``, the stage's recipe; its ``seq_len`` 0 means the base model's context."""
    from llmlab.runs import load_run
    from llmlab.train.loop import Trainer, prefer_native_bf16
    from llmlab.utils.io import write_json

    require(scfg, "sft")
    tcfg = prefer_native_bf16(tcfg or SFTConfig.train_config())
    out = Path(scfg.out)
    if Path(scfg.model).resolve() == out.resolve():
        raise LlmlabError(f"--out {out} is the base run itself; choose a new folder")
    ckpt = out / "checkpoints" / "last.pt"
    if resume and not ckpt.is_file():
        raise LlmlabError(f"{ckpt}: no checkpoint to resume from")
    if not resume and ckpt.is_file():
        raise LlmlabError(f"{out}: holds a checkpoint of an earlier run; pass --resume to continue it or use a new --out")

    device = resolve_device(tcfg.device)
    rank, world = init_distributed(device)
    master = rank == 0
    model, tok = load_run(scfg.model, device="cpu")
    model.train()
    ctx = model.config.max_seq_len
    if tcfg.seq_len == 0:  # the base model's context
        tcfg = replace(tcfg, seq_len=ctx)
    if tcfg.seq_len > ctx:
        raise LlmlabError(f"--seq-len {tcfg.seq_len} exceeds the base model's context {ctx}")

    train_convs, val_convs, info = load_sft_data(scfg, master)
    train_ex, train_skipped = render_examples(train_convs, tok, tcfg.seq_len)
    val_ex, val_skipped = render_examples(val_convs, tok, tcfg.seq_len)
    info.update(train_conversations=len(train_ex), val_conversations=len(val_ex), skipped_too_long=train_skipped,
                val_skipped_too_long=val_skipped,
                train_target_tokens=int(sum(int(m[1:].sum()) for _, m in train_ex)))
    batches = ConversationBatches(train_ex, tcfg.batch_size, tcfg.seq_len, tok.pad_id, packing=scfg.packing,
                                  seed=tcfg.seed, rank=rank, world_size=world)
    if not (tcfg.max_steps or tcfg.max_tokens or tcfg.time_budget):
        epochs = scfg.epochs or (1.0 if scfg.data == "bundled" else 4.0)
        steps = math.ceil(epochs * batches.rows_per_epoch() / (tcfg.batch_size * tcfg.grad_accum))
        tcfg = replace(tcfg, max_steps=max(1, steps))
        info["epochs"] = epochs
    _note(master, f"data: {len(train_ex)} train / {len(val_ex)} val conversations "
                  f"({train_skipped} too long skipped), {info['train_target_tokens']:,} assistant tokens; "
                  f"{'packed' if scfg.packing else 'padded'} rows of {tcfg.seq_len}; {tcfg.max_steps or '-'} steps")

    my_val = val_ex[rank::world]

    def eval_fn(m, final: bool):
        if not val_ex:
            return {}
        s, c = masked_loss(m, my_val, tcfg.seq_len, tok.pad_id) if my_val else (0.0, 0)
        t = all_reduce_sum(torch.tensor([s, float(c)], dtype=torch.float64, device=next(m.parameters()).device))
        return {"val_loss": float(t[0] / max(t[1], 1.0))}

    run_config = {"stage": "sft", "sft": config_to_dict(scfg), "base_model": str(scfg.model), "data": info}
    trainer = Trainer(model, tcfg, batches, sft_loss, out, eval_fn=eval_fn, tokenizer=tok, run_config=run_config,
                      resume=resume, progress=progress)
    result = trainer.fit()
    if result.interrupted or not master:
        return result
    result.summary.update({"base_model": str(scfg.model), "train_conversations": len(train_ex),
                           "val_conversations": len(val_ex), "skipped_too_long": train_skipped})
    if scfg.eval_samples > 0 and val_convs:
        from llmlab.eval.chat_eval import evaluate_chat

        _note(master, f"evaluating {min(scfg.eval_samples, len(val_convs))} held-out conversations (greedy)")
        ev = evaluate_chat(result.model, tok, val_convs[: scfg.eval_samples], max_new_tokens=scfg.max_new_tokens)
        result.summary.update({"format_rate": ev["format_rate"], "exact_match": ev["exact_match"],
                               "exact_match_by_kind": ev["exact_match_by_kind"]})
        write_json(out / "chat_eval.json", ev)
    write_json(out / "summary.json", result.summary)
    return result


def _note(master: bool, msg: str) -> None:
    if master:
        print(f"llmlab sft: {msg}", file=sys.stderr)
