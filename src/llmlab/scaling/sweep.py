"""A scaling sweep: model sizes (the ``depth-N`` dial) x compute budgets, each run trained to its budget.

    llmlab scaling sweep --out runs/scaling                       # CPU preset: 4 sizes x 3 budgets (~1 h, 2 cores)
    llmlab scaling sweep --out runs/scaling --dry-run             # the plan: tokens and FLOPs per run
    torchrun --nproc_per_node=8 $(which llmlab) scaling sweep --preset gpu --data corpus/ --out runs/scaling

    from llmlab.scaling.sweep import SweepConfig, run_sweep
    csv_path = run_sweep(SweepConfig.from_preset("cpu", out="runs/scaling"))

Every run is an ordinary pretraining run (``OUT/runs/C<budget>-d<depth>``) of a ``depth-N`` model whose width
is ``aspect * depth`` with heads ``head_dim`` wide, trained for ``budget / flops_per_token`` tokens (the model's
own count: 6 x matmul parameters + the attention scores, ``GPT.flops_per_token``), on one tokenizer and one
validation text shared by all runs. ``OUT/sweep.csv`` gets one row per finished run, keyed by ``budget`` and
``depth``: parameter counts with and without the embedding table, tokens, FLOPs and validation bits per byte.

Resumable: a run whose ``summary.json`` holds its ``val_bpb`` is never rerun (its row is rebuilt from the
summary), a run stopped part way (Ctrl-C, SIGTERM) continues from its checkpoint, and the CSV is rewritten
atomically after every run. Adding depths or budgets to a finished sweep runs only the new rows; changing
anything that shapes a run (sequence length, vocabulary, learning rate, ...) needs a new ``--out``.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llmlab.errors import LlmlabError
from llmlab.utils.io import read_json, write_json, write_text

SWEEP_FORMAT = "llmlab-scaling-sweep"
SWEEP_VERSION = 1
CSV_COLUMNS = ["budget", "depth", "d_model", "n_layer", "params", "params_non_embedding", "flops_per_token",
               "tokens", "flops", "val_bpb", "val_loss", "seconds", "tokens_per_sec", "run"]


@dataclass
class SweepConfig:
    out: str = "runs/scaling"
    preset: str = "cpu"  # the name of the preset these values came from (recorded, not read)
    depths: tuple[int, ...] = (1, 2, 3, 4)
    budgets: tuple[float, ...] = (5e11, 1.5e12, 4.5e12)  # training FLOPs per run
    aspect: int = 32  # d_model = aspect * depth (nanochat's dial uses 64; 32 keeps CPU sizes near the optimum)
    head_dim: int = 32
    data: str = "bundled"
    val_data: str = ""  # "" = the bundled validation split (with bundled data)
    val_bytes: int = 100_000  # every run is scored on the first this many bytes of the validation text (0 = all)
    vocab_size: int = 512  # of the tokenizer trained for the sweep (bits per byte do not depend on it)
    tokenizer: str = ""  # an existing tokenizer folder instead
    tokenizer_train_bytes: int = 5_000_000
    # training (each run: the loop's defaults with these)
    seq_len: int = 256
    batch_size: int = 4
    grad_accum: int = 1
    optimizer: str = "muon"
    lr: float = 6e-3
    muon_lr: float = 0.02
    schedule: str = "wsd"
    warmup_steps: int = 10
    dtype: str = "auto"
    device: str = "auto"
    compile: bool = False
    threads: int = 0
    seed: int = 1337

    # Fields that shape a run: a resumed sweep must agree on them (depths and budgets may grow).
    RUN_SHAPING = ("aspect", "head_dim", "data", "val_data", "val_bytes", "vocab_size", "tokenizer", "seq_len",
                   "batch_size", "grad_accum", "optimizer", "lr", "muon_lr", "schedule", "warmup_steps", "seed")

    PRESETS = {
        # ~1 h on 2 CPU cores (about 1.4e10 FLOP/s of training): 4 sizes (33k..0.92M parameters) x 3 budgets.
        "cpu": {},
        # One GPU node under torchrun, a real corpus (--data): nanochat-like widths (64 per layer), 1e17..1e18.
        "gpu": dict(depths=(6, 8, 10, 12, 14), budgets=(1e17, 3e17, 1e18), aspect=64, head_dim=64, data="",
                    val_bytes=5_000_000, vocab_size=32768, tokenizer_train_bytes=1_000_000_000, seq_len=1024,
                    batch_size=32, lr=6e-3, muon_lr=0.02, warmup_steps=50, compile=True),
    }

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "SweepConfig":
        if name not in cls.PRESETS:
            raise LlmlabError(f"unknown sweep preset {name!r}; choose one of {', '.join(cls.PRESETS)}")
        kw = {**cls.PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
        return cls(preset=name, **kw)

    def validate(self) -> None:
        problems = []
        if not self.depths or min(self.depths) < 1:
            problems.append("depths must be positive integers")
        if not self.budgets or min(self.budgets) <= 0:
            problems.append("budgets must be positive FLOP counts")
        if self.aspect < 1 or self.head_dim < 2 or self.head_dim % 2:
            problems.append("aspect must be positive and head_dim even")
        if not self.data:
            problems.append("no training data: pass --data (the gpu preset has no default corpus)")
        if problems:
            raise LlmlabError("invalid sweep config: " + "; ".join(problems))


@dataclass
class RunSpec:
    """One planned run: a model size trained for one compute budget."""

    budget: float
    depth: int
    d_model: int
    n_head: int
    params: int
    params_non_embedding: int
    flops_per_token: float
    tokens: int  # the horizon handed to the loop (it stops at the first whole step at or past it)
    name: str = field(default="")

    def model_overrides(self) -> dict:
        return dict(d_model=self.d_model, n_head=self.n_head, n_kv_head=self.n_head)


def budget_label(budget: float) -> str:
    """1.5e12 -> '1.5e12' (a stable folder name and CSV key)."""
    mant, exp = f"{budget:.6e}".split("e")
    return f"{float(mant):g}e{int(exp)}"


def model_config(cfg: SweepConfig, depth: int):
    """The ``depth-N`` model of this sweep: width ``aspect * depth``, heads ``head_dim`` wide."""
    from llmlab.model.gpt import ModelConfig

    d = cfg.aspect * depth
    n_head = max(1, d // cfg.head_dim)
    return ModelConfig.preset(f"depth-{depth}", d_model=d, n_head=n_head, n_kv_head=n_head,
                              vocab_size=cfg.vocab_size, max_seq_len=cfg.seq_len)


def count(mcfg, seq_len: int) -> tuple[int, int, float]:
    """(parameters, parameters without the token table(s), training FLOPs per token) of a model config,
    counted on the meta device (no memory, no init)."""
    import torch

    from llmlab.model.gpt import GPT

    with torch.device("meta"):
        model = GPT(mcfg)
    n = model.num_params()
    tables = mcfg.vocab_size * mcfg.d_model * (1 if mcfg.tie_embeddings else 2)
    return n, n - tables, float(model.flops_per_token(seq_len))


def plan(cfg: SweepConfig) -> list[RunSpec]:
    """Every (budget, depth) run, smallest budget first, then smallest model."""
    cfg.validate()
    specs = []
    step_tokens = cfg.batch_size * cfg.grad_accum * cfg.seq_len
    for budget in sorted(set(cfg.budgets)):
        for depth in sorted(set(cfg.depths)):
            mcfg = model_config(cfg, depth)
            n, n_ne, fpt = count(mcfg, cfg.seq_len)
            tokens = int(round(budget / fpt))
            if tokens < 10 * step_tokens:
                raise LlmlabError(f"budget {budget:g} gives depth-{depth} only {tokens} tokens (< 10 steps of "
                                  f"{step_tokens}); raise the budget or drop that depth")
            specs.append(RunSpec(budget, depth, mcfg.d_model, mcfg.n_head, n, n_ne, fpt, tokens,
                                 name=f"C{budget_label(budget)}-d{depth}"))
    return specs


# ----------------------------------------------------------------------------------------------------------
# Shared inputs: one tokenizer, one validation text


def _prepare_shared(cfg: SweepConfig, out: Path, master: bool) -> tuple[str, str]:
    """(tokenizer folder, validation text file), made once in OUT by rank 0."""
    from llmlab.data.ingest import iter_texts

    tok_dir = Path(cfg.tokenizer) if cfg.tokenizer else out / "tokenizer"
    val_path = out / "val.txt"
    if not master:
        return str(tok_dir), str(val_path)
    if not cfg.tokenizer and not (tok_dir.is_dir() and any(tok_dir.iterdir())):
        from llmlab.tokenizer import Tokenizer

        texts, n = [], 0
        for doc in iter_texts(cfg.data):
            texts.append(doc[: max(0, cfg.tokenizer_train_bytes - n)])
            n += len(texts[-1])
            if n >= cfg.tokenizer_train_bytes:
                break
        Tokenizer.train(texts, cfg.vocab_size).save(tok_dir)
    if not val_path.is_file():
        source = cfg.val_data or ("bundled:val" if cfg.data in ("bundled", "bundled:train") else "")
        if not source:
            raise LlmlabError("no validation text: pass --val-data (needed for val_bpb)")
        raw = "".join(iter_texts(source)).encode("utf-8")
        if cfg.val_bytes:
            raw = raw[: cfg.val_bytes]
        write_text(val_path, raw.decode("utf-8", errors="ignore"))
    return str(tok_dir), str(val_path)


def _check_config(cfg: SweepConfig, out: Path, master: bool) -> None:
    """A sweep folder remembers its config; a rerun may add depths/budgets but not change how runs train."""
    path = out / "sweep.json"
    mine = {"format": SWEEP_FORMAT, "version": SWEEP_VERSION, **asdict(cfg)}
    if path.is_file():
        old = read_json(path, "sweep config")
        diff = [k for k in SweepConfig.RUN_SHAPING if k in old and old[k] != mine[k]]
        if diff:
            raise LlmlabError(f"{path}: this sweep was made with other {', '.join(diff)} "
                              f"({', '.join(f'{k}={old[k]!r}' for k in diff)}); use a new --out")
        mine["depths"] = sorted(set(old.get("depths", [])) | set(cfg.depths))
        mine["budgets"] = sorted(set(old.get("budgets", [])) | set(cfg.budgets))
    if master:
        write_json(path, mine)


# ----------------------------------------------------------------------------------------------------------
# Running


def train_run(cfg: SweepConfig, spec: RunSpec, run_dir: Path, tokenizer: str, val_path: str, *,
              progress: bool | None = None) -> dict:
    """Pretrain one sweep run to its token horizon and return its summary. The one place the sweep calls
    the pretraining stage."""
    from llmlab.train.configs import PretrainConfig, TrainConfig
    from llmlab.train.pretrain import run

    pcfg = PretrainConfig(data=cfg.data, val_data=val_path, out=str(run_dir), preset=f"depth-{spec.depth}",
                          tokenizer=tokenizer, vocab_size=cfg.vocab_size, samples=0, **spec.model_overrides())
    tcfg = TrainConfig(max_tokens=spec.tokens, seq_len=cfg.seq_len, batch_size=cfg.batch_size,
                       grad_accum=cfg.grad_accum, optimizer=cfg.optimizer, lr=cfg.lr, muon_lr=cfg.muon_lr,
                       schedule=cfg.schedule, warmup_steps=cfg.warmup_steps, dtype=cfg.dtype, device=cfg.device,
                       compile=cfg.compile, threads=cfg.threads, seed=cfg.seed)
    resume = (run_dir / "checkpoints" / "last.pt").is_file()
    result = run(pcfg, tcfg, resume=resume, progress=progress)
    if result.interrupted:
        raise KeyboardInterrupt
    return result.summary


def finished_row(spec: RunSpec, run_dir: Path, out: Path) -> dict | None:
    """The CSV row of a finished run (from its summary.json), or None if it has not finished."""
    path = run_dir / "summary.json"
    if not path.is_file() or not (run_dir / "model_config.json").is_file():
        return None
    s = read_json(path, "run summary")
    if s.get("val_bpb") is None:
        return None
    tokens = int(s["tokens"])
    return {"budget": budget_label(spec.budget), "depth": spec.depth, "d_model": spec.d_model,
            "n_layer": spec.depth, "params": spec.params, "params_non_embedding": spec.params_non_embedding,
            "flops_per_token": f"{spec.flops_per_token:.6g}", "tokens": tokens,
            "flops": f"{spec.flops_per_token * tokens:.6g}", "val_bpb": f"{s['val_bpb']:.6f}",
            "val_loss": f"{s['val_loss']:.6f}", "seconds": s.get("seconds", ""),
            "tokens_per_sec": s.get("tokens_per_sec", ""), "run": str(run_dir.relative_to(out))}


def write_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text(path, buf.getvalue())


def run_sweep(cfg: SweepConfig, *, dry_run: bool = False, progress: bool | None = None, log=None) -> Path:
    """Run (or resume) the sweep; returns ``OUT/sweep.csv``. Under torchrun every rank runs every run
    together (DDP); rank 0 writes the files."""
    from llmlab.utils.dist import dist_info

    quiet = dist_info()[0] != 0  # under torchrun rank 0 speaks for all
    log = log or (lambda msg: quiet or print(f"llmlab scaling sweep: {msg}", file=sys.stderr, flush=True))
    specs = plan(cfg)
    out = Path(cfg.out)
    csv_path = out / "sweep.csv"
    if dry_run:
        for s in specs:
            log(f"{s.name}: {s.params:,} params ({s.params_non_embedding:,} without embeddings), "
                f"{s.flops_per_token:.3g} FLOPs/token -> {s.tokens:,} tokens")
        return csv_path
    from llmlab.utils.device import resolve_device
    from llmlab.utils.dist import init_distributed

    # Join torchrun's process group now (pretrain would, later): rank 0 makes the shared tokenizer and
    # validation text, and the others must wait for them at the barrier below.
    master = init_distributed(resolve_device(cfg.device))[0] == 0
    out.mkdir(parents=True, exist_ok=True)
    _check_config(cfg, out, master)
    tokenizer, val_path = _prepare_shared(cfg, out, master)
    _barrier()
    rows = []
    for i, spec in enumerate(specs, 1):
        run_dir = out / "runs" / spec.name
        row = finished_row(spec, run_dir, out)
        if row is None:
            log(f"[{i}/{len(specs)}] {spec.name}: {spec.params:,} params, {spec.tokens:,} tokens")
            t0 = time.perf_counter()
            train_run(cfg, spec, run_dir, tokenizer, val_path, progress=progress)
            _barrier()
            row = finished_row(spec, run_dir, out)
            if row is None:
                raise LlmlabError(f"{run_dir}: the run ended without a val_bpb in its summary.json")
            log(f"[{i}/{len(specs)}] {spec.name}: val_bpb {float(row['val_bpb']):.4f} "
                f"({time.perf_counter() - t0:.0f}s)")
        else:
            log(f"[{i}/{len(specs)}] {spec.name}: done before (val_bpb {float(row['val_bpb']):.4f})")
        rows.append(row)
        if master:
            write_csv(csv_path, _merge_rows(csv_path, rows))
    return csv_path


def _merge_rows(csv_path: Path, rows: list[dict]) -> list[dict]:
    """This invocation's rows plus rows of earlier invocations (other depths/budgets) already in the CSV."""
    keys = {(r["budget"], str(r["depth"])) for r in rows}
    old = []
    if csv_path.is_file():
        with open(csv_path, newline="", encoding="utf-8") as f:
            old = [r for r in csv.DictReader(f) if (r.get("budget"), r.get("depth")) not in keys]
    merged = old + rows
    return sorted(merged, key=lambda r: (float(r["budget"]), int(r["depth"])))


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
