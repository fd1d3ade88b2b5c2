"""Pretraining: next-token prediction over a text corpus, wired onto the shared loop.

    llmlab pretrain --out runs/base                         # bundled corpus, CPU-speedrun defaults (180 s)
    llmlab pretrain --data corpus/ --val-data val.txt --out runs/base --preset gpt2-small --time-budget 3600
    torchrun --nproc_per_node=2 $(which llmlab) pretrain --out runs/base --max-steps 1000

    from llmlab.train.pretrain import PretrainConfig, run
    result = run(PretrainConfig(out="runs/base"))                 # the stage's recipe (PretrainConfig.train_defaults)
    result = run(PretrainConfig(out="runs/b2", preset="tiny"), PretrainConfig.train_config(max_steps=100))

Steps: tokenizer (given, resumed from RUN/tokenizer, or trained on the training text *before* the clock
starts), token shards (cached in RUN/data_cache), model from a preset (context = seq_len), the loop with
cross-entropy on random BOS-led windows, bits per byte on the validation text during and after training, a
few generated samples in RUN/samples.txt and summary.json.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from llmlab.errors import LlmlabError
from llmlab.train.configs import PretrainConfig
from llmlab.train.loop import TrainConfig, TrainResult, cross_entropy_loss, resolve_device
from llmlab.utils.config import config_to_dict, require
from llmlab.utils.dist import init_distributed
from llmlab.utils.io import read_json, write_text


def _get_tokenizer(pcfg: PretrainConfig, out: Path, resume: bool, master: bool):
    from llmlab.tokenizer import Tokenizer

    saved = out / "tokenizer"
    if pcfg.tokenizer:
        if not Path(pcfg.tokenizer).is_dir():
            raise LlmlabError(f"{pcfg.tokenizer}: tokenizer folder not found")
        return Tokenizer.load(pcfg.tokenizer), f"loaded from {pcfg.tokenizer}"
    if saved.is_dir() and any(saved.iterdir()):  # a resumed (or repeated) run keeps its tokenizer
        return Tokenizer.load(saved), f"reused {saved}"
    from llmlab.data.ingest import iter_texts

    t0 = time.perf_counter()
    texts, n = [], 0
    for doc in iter_texts(pcfg.data):
        texts.append(doc[: max(0, pcfg.tokenizer_train_bytes - n)])
        n += len(texts[-1])
        if n >= pcfg.tokenizer_train_bytes:
            break
    tok = Tokenizer.train(texts, pcfg.vocab_size)
    if master:
        tok.save(saved)
    return tok, f"trained (vocab {pcfg.vocab_size}) in {time.perf_counter() - t0:.1f}s, not counted in the budget"


def run(pcfg: PretrainConfig, tcfg: TrainConfig | None = None, *, resume: bool = False,
        progress: bool | None = None) -> TrainResult:
    """Run pretraining and return the loop's result (summary also written to RUN/summary.json). ``tcfg``:
    default ``PretrainConfig.train_config()``, the stage's recipe."""
    import torch.distributed as dist

    from llmlab.data.ingest import iter_texts
    from llmlab.eval.bpb import bits_per_byte
    from llmlab.model.gpt import GPT, ModelConfig
    from llmlab.train.data import TokenBatches, tokenize_to_shards
    from llmlab.train.loop import Trainer, prefer_native_bf16

    require(pcfg, "pretrain")
    tcfg = tcfg or PretrainConfig.train_config()
    tcfg.validate()
    tcfg = prefer_native_bf16(tcfg)
    out = Path(pcfg.out)
    device = resolve_device(tcfg.device)
    rank, world = init_distributed(device)
    master = rank == 0
    if resume and not (out / "checkpoints" / "last.pt").is_file():
        raise LlmlabError(f"{out / 'checkpoints' / 'last.pt'}: no checkpoint to resume from")
    if not resume and (out / "checkpoints" / "last.pt").is_file():
        raise LlmlabError(f"{out}: holds a checkpoint of an earlier run; pass --resume to continue it or use a new --out")
    out.mkdir(parents=True, exist_ok=True)

    # 1. Tokenizer (rank 0 trains it; the others wait and load it).
    if master or pcfg.tokenizer:
        tok, how = _get_tokenizer(pcfg, out, resume, master)
    if world > 1:
        dist.barrier()
        if not master and not pcfg.tokenizer:
            from llmlab.tokenizer import Tokenizer

            tok, how = Tokenizer.load(out / "tokenizer"), "rank 0's"
    _note(master, f"tokenizer: {how}")

    # 2. Model. On resume the saved model config wins (flags that change shapes would not fit the checkpoint).
    overrides = pcfg.model_overrides()
    overrides.setdefault("max_seq_len", tcfg.seq_len)
    mcfg = ModelConfig.preset(pcfg.preset, vocab_size=tok.vocab_size, **overrides)
    if resume and (out / "config.json").is_file():
        saved = read_json(out / "config.json", "run config").get("model")
        if saved:
            from llmlab.utils.config import config_from_dict

            mcfg = config_from_dict(ModelConfig, saved, source=str(out / "config.json"))
    if mcfg.vocab_size != tok.vocab_size:
        raise LlmlabError(f"tokenizer has {tok.vocab_size} tokens but the model's vocabulary is {mcfg.vocab_size}")
    if tcfg.seq_len > mcfg.max_seq_len:
        raise LlmlabError(f"--seq-len {tcfg.seq_len} exceeds the model context {mcfg.max_seq_len}")
    torch.manual_seed(tcfg.seed)  # the same initial weights on every rank
    model = GPT(mcfg)

    # 3. Data (rank 0 encodes into the cache; the others then read it).
    def shards():
        return tokenize_to_shards(pcfg.data, tok, out / "data_cache" / "train")

    t0 = time.perf_counter()
    if master:
        train_shards = shards()
    if world > 1:
        dist.barrier()
        if not master:
            train_shards = shards()
    n_tokens = sum(len(s) for s in train_shards)
    _note(master, f"data: {pcfg.data}: {n_tokens:,} tokens ({time.perf_counter() - t0:.1f}s)")
    batches = TokenBatches(train_shards, tcfg.batch_size, tcfg.seq_len, tok.bos_id, seed=tcfg.seed, rank=rank,
                           world_size=world, sampling=pcfg.sampling, bos_windows=pcfg.bos_windows, source=pcfg.data)

    val_source = pcfg.val_data or ("bundled:val" if pcfg.data in ("bundled", "bundled:train") else "")
    val_texts = list(iter_texts(val_source)) if val_source else []

    def eval_fn(m, final: bool):
        if not val_texts:
            return {}
        # The final evaluation scores the whole validation text; periodic ones may use a prefix.
        limit = 0 if final else pcfg.eval_max_bytes
        r = bits_per_byte(m, tok, val_texts, context=tcfg.seq_len, max_bytes=limit)
        return {"val_bpb": r["bpb"], "val_loss": r["loss"]}

    run_config = {"stage": "pretrain", "pretrain": config_to_dict(pcfg), "tokenizer": {"vocab_size": tok.vocab_size, "source": how},
                  "data": {"train": pcfg.data, "val": val_source, "train_tokens": n_tokens}}
    trainer = Trainer(model, tcfg, batches, cross_entropy_loss, out, eval_fn=eval_fn, tokenizer=tok,
                      run_config=run_config, resume=resume, progress=progress)
    result = trainer.fit()
    if result.interrupted:
        return result
    if master and pcfg.samples > 0:
        samples = generate_samples(result.model, tok, val_texts, pcfg.samples, pcfg.sample_tokens, tcfg.seed)
        write_text(out / "samples.txt", "\n\n".join(f"--- sample {i + 1} ---\n{s}" for i, s in enumerate(samples)) + "\n")
        result.summary["samples"] = samples
        from llmlab.utils.io import write_json

        write_json(out / "summary.json", result.summary)
    return result


@torch.no_grad()
def generate_samples(model, tok, prompts_from: list[str], n: int, max_new: int, seed: int) -> list[str]:
    """A few top-k (k=40, temperature 0.8) samples with the KV cache, each prompted by BOS plus the first words
    of a validation line (or BOS alone). The inference engine (llmlab.infer) is the real generator."""
    from llmlab.model.gpt import KVCache

    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    lines = [ln.strip() for t in prompts_from[:1] for ln in t.splitlines() if len(ln.split()) >= 4][:200]
    out = []
    for i in range(n):
        prompt = " ".join(lines[(i * 37) % len(lines)].split()[:3]) if lines else ""
        ids = [tok.bos_id] + tok.encode(prompt)
        budget = min(max_new, model.config.max_seq_len - len(ids))
        cache = KVCache(model.config, 1, len(ids) + budget, device)
        logits = model(torch.tensor([ids], device=device), kv_cache=cache)[:, -1]  # (1, vocab)
        new = []
        for _ in range(budget):
            probs = torch.softmax(logits.float().cpu() / 0.8, dim=-1)
            top, idx = probs.topk(40)
            nxt = int(idx[0, torch.multinomial(top[0] / top[0].sum(), 1, generator=gen)])
            if nxt in (tok.bos_id, tok.eot_id):
                break
            new.append(nxt)
            if len(new) < budget:
                logits = model(torch.tensor([[nxt]], device=device), kv_cache=cache)[:, -1]
        out.append(prompt + tok.decode(new))
    return out


def _note(master: bool, msg: str) -> None:
    if master:
        print(f"llmlab pretrain: {msg}", file=sys.stderr)
