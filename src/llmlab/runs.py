"""Run folders on disk: the model's weights, its config and its tokenizer, as every stage writes them.

    from llmlab.runs import save_run_model, load_run
    save_run_model("runs/base", model, tokenizer)     # model.safetensors + model_config.json + tokenizer/
    model, tokenizer = load_run("runs/base")          # also: llmlab.load("runs/base")

``model.safetensors`` holds the weights under our (Llama-style) names; with tied embeddings the output head is
not stored twice. ``model_config.json`` carries a format name and version; loading tolerates older configs
(unknown keys are ignored, missing ones take defaults).
"""

from __future__ import annotations

from pathlib import Path

import torch

from llmlab.errors import LlmlabError
from llmlab.model.gpt import GPT, MODEL_FORMAT, MODEL_FORMAT_VERSION, ModelConfig
from llmlab.utils.config import config_from_dict, config_to_dict
from llmlab.utils.io import atomic_path, read_json, write_json

WEIGHTS = "model.safetensors"
MODEL_CONFIG = "model_config.json"
TOKENIZER_DIR = "tokenizer"
REWARD_HEAD = "reward_head.safetensors"
REWARD_HEAD_META = "reward_head.json"
REWARD_HEAD_FORMAT = "llmlab-reward-head"
REWARD_HEAD_VERSION = 3  # v2 adds logprob_coef (written only when it is not 0), v3 head_layers (when not 1)


def model_state_dict(model: GPT) -> dict[str, torch.Tensor]:
    """The weights to store: contiguous CPU tensors, the tied head left out (it *is* the embedding)."""
    model = unwrap(model)
    sd = model.state_dict()
    if model.config.tie_embeddings:
        sd.pop("lm_head.weight", None)
    return {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}


def unwrap(model: torch.nn.Module) -> GPT:
    """The GPT inside DDP / torch.compile wrappers."""
    while True:
        if hasattr(model, "module"):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def save_model_config(run_dir: str | Path, config: ModelConfig) -> None:
    # The oldest version that describes the config, so older llmlab versions keep reading plain models.
    write_json(Path(run_dir) / MODEL_CONFIG, {"format": MODEL_FORMAT, "version": config.format_version,
                                              **config_to_dict(config)})


def save_run_model(run_dir: str | Path, model: torch.nn.Module, tokenizer=None) -> Path:
    """Write ``model.safetensors`` and ``model_config.json`` (and ``tokenizer/`` if given) atomically."""
    from safetensors.torch import save_file

    run_dir = Path(run_dir)
    gpt = unwrap(model)
    with atomic_path(run_dir / WEIGHTS) as tmp:
        save_file(model_state_dict(gpt), str(tmp), metadata={"format": MODEL_FORMAT,
                                                             "version": str(gpt.config.format_version)})
    save_model_config(run_dir, gpt.config)
    if tokenizer is not None:
        tokenizer.save(run_dir / TOKENIZER_DIR)
    return run_dir / WEIGHTS


def load_model_config(run_dir: str | Path) -> ModelConfig:
    path = Path(run_dir) / MODEL_CONFIG
    if not Path(run_dir).is_dir():
        raise LlmlabError(f"{run_dir}: run folder not found")
    data = read_json(path, "model config")
    if data.get("format", MODEL_FORMAT) != MODEL_FORMAT:
        raise LlmlabError(f"{path}: not an llmlab model config (format {data.get('format')!r})")
    if int(data.get("version", 1)) > MODEL_FORMAT_VERSION:
        raise LlmlabError(f"{path}: model format version {data['version']} is newer than this llmlab understands")
    data = {k: v for k, v in data.items() if k not in ("format", "version")}
    return config_from_dict(ModelConfig, data, source=str(path))


def load_model(run_dir: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> GPT:
    """Build the model from ``model_config.json`` and load ``model.safetensors`` (strictly: every weight), on
    ``device`` with that device's kernels swapped in (``model.kernels.convert``)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    config = load_model_config(run_dir)
    path = run_dir / WEIGHTS
    if not path.is_file():
        raise LlmlabError(f"{path}: weights not found (did the training stage finish?)")
    try:
        sd = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise LlmlabError(f"{path}: cannot read weights ({e})") from None
    model = model_from_state_dict(config, sd, str(path), "the config")
    from llmlab.model.kernels import convert
    from llmlab.utils.device import resolve_device

    device = resolve_device(device)
    model = model.to(device)
    if dtype is not None:
        model = model.to(dtype)
    convert(model, device)  # the device's kernels (model/kernels): same weights, faster layers
    model.eval()
    return model


def model_from_state_dict(config: ModelConfig, sd: dict[str, torch.Tensor], where: str,
                          described_by: str = "the config") -> GPT:
    """A CPU ``GPT`` of ``config`` holding exactly the weights ``sd`` (our names; the tied head left out), in
    the dtype of the model's parameters (float32); the tensors of ``sd`` become its parameters where they have
    that dtype. Missing, unexpected or misshapen weights are a one-line error naming ``where`` and what
    describes the shapes (``described_by``)."""
    with torch.device("meta"):
        model = GPT(config)
    expected = set(model_state_dict_keys(model))
    missing, unexpected = sorted(expected - set(sd)), sorted(set(sd) - expected)
    if missing or unexpected:
        raise LlmlabError(f"{where}: weights do not match {described_by} (missing {missing[:3]}, unexpected "
                          f"{unexpected[:3]})")
    for k, v in sd.items():
        want = model.get_parameter(k).shape
        if tuple(v.shape) != tuple(want):
            raise LlmlabError(f"{where}: weight {k} has shape {tuple(v.shape)}, {described_by} says {tuple(want)}")
    # The tensors become the parameters (no copy), in the parameters' dtype.
    dtypes = {k: v.dtype for k, v in model.state_dict().items()}
    model.load_state_dict({k: v.to(dtypes[k]) for k, v in sd.items()}, strict=False, assign=True)
    if config.tie_embeddings:
        model.lm_head.weight = model.embed_tokens.weight
    # Buffers (RoPE tables) were left unallocated by the meta-device build: compute them.
    from llmlab.model.gpt import rope_tables

    model.rope_cos, model.rope_sin = rope_tables(config.head_dim, config.max_seq_len, config.rope_theta,
                                                 config.rope_scaling)
    return model


def model_state_dict_keys(model: GPT) -> list[str]:
    """The names ``model_state_dict`` stores (the tied head left out)."""
    keys = list(model.state_dict().keys())
    if model.config.tie_embeddings:
        keys.remove("lm_head.weight")
    return keys


def load_tokenizer(run_dir: str | Path):
    """The run's tokenizer: llmlab's own ``Tokenizer``, or the ``ImportedTokenizer`` of an imported model
    (chosen by the format marker in ``tokenizer/tokenizer.json``)."""
    from llmlab.tokenizer import load_tokenizer_dir

    tok_dir = Path(run_dir) / TOKENIZER_DIR
    if not tok_dir.is_dir():
        raise LlmlabError(f"{tok_dir}: tokenizer not found in run folder {run_dir}")
    meta = tok_dir / "imported.json"  # an imported model's kept tokenizer (export/imported_tokenizer.py)
    why = read_json(meta, "imported tokenizer").get("unsupported") if meta.is_file() else None
    if why:
        raise LlmlabError(f"{tok_dir}: an imported model's own tokenizer, kept as its files; it cannot encode here "
                          f"({why}); the weights load with llmlab.runs.load_model")
    return load_tokenizer_dir(tok_dir)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
    """``(model, tokenizer)`` from a run folder (weights in ``dtype``, default as stored); checks that they agree
    on the vocabulary size."""
    model = load_model(run_dir, device=device, dtype=dtype)
    tokenizer = load_tokenizer(run_dir)
    if tokenizer.vocab_size != model.config.vocab_size:
        raise LlmlabError(
            f"{run_dir}: tokenizer has {tokenizer.vocab_size} tokens but the model expects {model.config.vocab_size}"
        )
    return model, tokenizer


def check_same_tokenizer(a, b, what: str) -> None:
    """Two runs must share a vocabulary for their token ids to mean the same thing."""
    if a.vocab_size != b.vocab_size or a.encode("To be, or not to be: 12 + 7 = 19.") != b.encode(
        "To be, or not to be: 12 + 7 = 19."
    ):
        raise LlmlabError(f"{what}: the tokenizers differ; train every stage from the same base run")


# ----------------------------------------------------------------------------------------------------------
# Reward-model run folders: an ordinary run folder (the backbone) plus reward_head.safetensors and
# reward_head.json (format llmlab-reward-head v1; v2 when it records a logprob_coef, v3 when it records head_layers).


def save_reward_model(run_dir: str | Path, rm, tokenizer=None) -> None:
    """Backbone as a normal run folder, the head beside it (atomic writes)."""
    from safetensors.torch import save_file

    from llmlab.model.heads import ScalarHeadModel

    rm = unwrap(rm) if not isinstance(rm, ScalarHeadModel) else rm
    run_dir = Path(run_dir)
    save_run_model(run_dir, rm.backbone, tokenizer)
    head = {k: v.detach().cpu().contiguous() for k, v in rm.head.state_dict().items()}
    meta = {"format": REWARD_HEAD_FORMAT, "version": 1, "d_model": rm.config.d_model}
    if rm.logprob_coef:  # v2: the score adds the log-likelihood term; a v1 reader must refuse it, not ignore it
        meta.update(version=2, logprob_coef=rm.logprob_coef)
    if rm.head_layers != 1:  # v3: the head reads several layers; older readers must refuse it
        meta.update(version=3, head_layers=rm.head_layers)
    with atomic_path(run_dir / REWARD_HEAD) as tmp:
        save_file(head, str(tmp), metadata={"format": REWARD_HEAD_FORMAT, "version": str(meta["version"])})
    write_json(run_dir / REWARD_HEAD_META, meta)


def load_reward_model(run_dir: str | Path, device="cpu") -> tuple:
    """``(reward_model, tokenizer)`` from a folder written by ``llmlab rm``."""
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    if not (run_dir / REWARD_HEAD).is_file():
        raise LlmlabError(f"{run_dir}: not a reward-model run (no {REWARD_HEAD}; train one with `llmlab rm`)")
    meta = read_json(run_dir / REWARD_HEAD_META, "reward head metadata")
    if meta.get("format") != REWARD_HEAD_FORMAT or int(meta.get("version", 0)) > REWARD_HEAD_VERSION:
        raise LlmlabError(f"{run_dir / REWARD_HEAD_META}: unknown reward head format {meta.get('format')!r} "
                          f"v{meta.get('version')}")
    from llmlab.model.heads import ScalarHeadModel

    backbone, tok = load_run(run_dir, device="cpu")
    rm = ScalarHeadModel(backbone, logprob_coef=float(meta.get("logprob_coef", 0.0)),
                         head_layers=int(meta.get("head_layers", 1)))
    rm.head.load_state_dict(load_file(str(run_dir / REWARD_HEAD)))
    return rm.to(device).eval(), tok
