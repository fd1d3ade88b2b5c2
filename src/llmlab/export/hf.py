"""Hugging Face interoperability: a run folder <-> a ``LlamaForCausalLM`` folder.

    llmlab export hf --model runs/sft --out hf/                 # then transformers.AutoModelForCausalLM.from_pretrained("hf/")
    llmlab import hf --path some-llama/ --out runs/imported     # a local Llama-architecture checkpoint

    from llmlab.export.hf import export_hf, import_hf, to_hf_model
    hf_model = to_hf_model(gpt)        # in memory, for benchmarks and parity tests

Our parameter names are ``LlamaForCausalLM``'s without the leading ``model.`` and our RoPE is the same
rotate-half form, so the weights map one to one: export adds the prefix (and ``lm_head.weight`` only when the
head is untied), import strips it. The exported folder holds ``config.json``, ``model.safetensors``,
``generation_config.json`` (stops at ``<|end|>`` and ``<|endoftext|>``), ``tokenizer.json`` (byte-level BPE
with our split regex; encoding with special tokens puts ``<|bos|>`` in front, as ``llmlab generate`` does, so
the same prompt text gives the same ids and the same greedy continuation in transformers) and
``tokenizer_config.json`` (bos/eos/pad, ``add_bos_token``, and the chat template as Jinja, so
``apply_chat_template`` renders exactly what ``llmlab.chat`` renders; a test checks it).

Import reads ``config.json`` and ``model.safetensors`` (or shards listed in ``model.safetensors.index.json``).
Anything our model cannot represent (biases, another activation, RoPE scaling, a head size other than
hidden/heads, a non-Llama architecture) is refused with a one-line error rather than imported wrong. The
tokenizer is converted when it is a byte-level BPE whose merges rebuild its vocabulary and which has our chat
special tokens; token ids are renumbered into our layout (bytes, merges, specials) and the embedding rows
permuted to match. Otherwise ``--tokenizer DIR`` pairs the weights with an llmlab tokenizer of the same size.
"""

from __future__ import annotations

from pathlib import Path

from llmlab.errors import LlmlabError
from llmlab.utils.io import atomic_path, read_json, write_json

# The special tokens llmlab's chat stages need; an imported tokenizer without them cannot serve a chat.
REQUIRED_SPECIALS = ("<|bos|>", "<|endoftext|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
# Hugging Face's ByteLevel pre-tokenizer with use_regex=True splits with GPT-2's pattern, spelled like this.
HF_GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


# ----------------------------------------------------------------------------------------------------------
# Export


def hf_config(config, tokenizer) -> dict:
    """``config.json`` for ``LlamaForCausalLM``. ``rope_theta`` sits at the top level (the classic layout;
    transformers >= 5 moves it into ``rope_parameters`` itself, and llama.cpp's converter reads it there)."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": config.vocab_size,
        "hidden_size": config.d_model,
        "intermediate_size": config.ffn_hidden,
        "num_hidden_layers": config.n_layer,
        "num_attention_heads": config.n_head,
        "num_key_value_heads": config.n_kv_head,
        "head_dim": config.head_dim,
        "max_position_embeddings": config.max_seq_len,
        "rope_theta": float(config.rope_theta),
        "rope_scaling": None,
        "rms_norm_eps": float(config.norm_eps),
        "hidden_act": "silu",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "tie_word_embeddings": bool(config.tie_embeddings),
        "initializer_range": float(config.init_std),
        "bos_token_id": tokenizer.bos_id if tokenizer else None,
        "eos_token_id": tokenizer.end_id if tokenizer else None,
        "pad_token_id": tokenizer.pad_id if tokenizer else None,
        "torch_dtype": "float32",
        "use_cache": True,
    }


def hf_state_dict(model) -> dict:
    """Our weights under HF names (``model.`` prefix; ``lm_head.weight`` only when untied), CPU contiguous."""
    from llmlab.runs import model_state_dict

    out = {}
    for name, t in model_state_dict(model).items():
        out[name if name == "lm_head.weight" else f"model.{name}"] = t
    return out


def write_hf_tokenizer(tokenizer, out_dir: str | Path, max_len: int) -> None:
    """``tokenizer.json`` (from the tokenizer's own exporter), ``tokenizer_config.json`` and
    ``special_tokens_map.json`` into ``out_dir``."""
    from llmlab.chat.template import CHAT_TEMPLATE

    out_dir = Path(out_dir)
    tokenizer.export_hf(out_dir / "tokenizer.json", add_bos=True)
    specials = {"bos_token": "<|bos|>", "eos_token": "<|end|>", "pad_token": "<|pad|>"}
    write_json(out_dir / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **specials,
        "additional_special_tokens": [s for s in tokenizer.special_tokens if s not in specials.values()],
        # Encoding text with special tokens puts <|bos|> in front (the tokenizer.json post-processor), as
        # `llmlab generate` does; apply_chat_template encodes without special tokens and its template writes
        # <|bos|> itself, so a chat never gets two.
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": max_len,
        "chat_template": CHAT_TEMPLATE,
    })
    write_json(out_dir / "special_tokens_map.json", specials)


def export_hf(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write a ``LlamaForCausalLM`` folder for the run in ``run_dir``; returns ``out_dir``."""
    from safetensors.torch import save_file

    from llmlab.runs import load_run

    model, tokenizer = load_run(run_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "model.safetensors") as tmp:
        save_file(hf_state_dict(model), str(tmp), metadata={"format": "pt"})
    write_json(out_dir / "config.json", hf_config(model.config, tokenizer))
    write_json(out_dir / "generation_config.json", {
        "bos_token_id": tokenizer.bos_id,
        "eos_token_id": [tokenizer.end_id, tokenizer.eot_id],
        "pad_token_id": tokenizer.pad_id,
    })
    write_hf_tokenizer(tokenizer, out_dir, model.config.max_seq_len)
    return out_dir


def to_hf_model(gpt):
    """An in-memory ``transformers.LlamaForCausalLM`` with our model's weights (fp32, eval mode)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from llmlab.runs import unwrap

    gpt = unwrap(gpt)
    cfg = {k: v for k, v in hf_config(gpt.config, None).items() if k not in ("architectures", "model_type")}
    hf = LlamaForCausalLM(LlamaConfig(**cfg))
    sd = {k: v.float() for k, v in hf_state_dict(gpt).items()}
    missing, unexpected = hf.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and gpt.config.tie_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"weights do not map onto LlamaForCausalLM: missing {missing}, unexpected {unexpected}")
    if gpt.config.tie_embeddings:
        hf.tie_weights()
    return hf.to(torch.float32).eval()


# ----------------------------------------------------------------------------------------------------------
# Import


def model_config_from_hf(cfg: dict, where: str):
    """Our ``ModelConfig`` from an HF ``config.json`` dict; refuses what our model cannot represent."""
    from llmlab.model.gpt import ModelConfig

    arch = cfg.get("architectures") or []
    if cfg.get("model_type") != "llama" or (arch and "LlamaForCausalLM" not in arch):
        raise LlmlabError(f"{where}: model_type {cfg.get('model_type')!r} (architectures {arch}) is not a Llama "
                          f"causal LM; only LlamaForCausalLM checkpoints can be imported")
    missing = [k for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                           "num_attention_heads") if k not in cfg]
    if missing:
        raise LlmlabError(f"{where}: missing {', '.join(missing)}")
    d, n_head = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
    rope = cfg.get("rope_parameters") or {}
    scaling = cfg.get("rope_scaling") or None
    problems = []
    if cfg.get("hidden_act", "silu") != "silu":
        problems.append(f"hidden_act {cfg['hidden_act']!r} (we use silu)")
    if cfg.get("attention_bias") or cfg.get("mlp_bias"):
        problems.append("linear biases (attention_bias/mlp_bias)")
    if (scaling and scaling.get("rope_type", scaling.get("type")) not in (None, "default")) or \
            rope.get("rope_type", "default") != "default":
        problems.append(f"RoPE scaling {scaling or rope}")
    if cfg.get("head_dim") not in (None, d // n_head):
        problems.append(f"head_dim {cfg['head_dim']} != hidden_size / num_attention_heads = {d // n_head}")
    if problems:
        raise LlmlabError(f"{where}: unsupported by llmlab's model: " + "; ".join(problems))
    return ModelConfig(
        vocab_size=int(cfg["vocab_size"]), n_layer=int(cfg["num_hidden_layers"]), n_head=n_head,
        n_kv_head=int(cfg.get("num_key_value_heads") or n_head), d_model=d, ffn_hidden=int(cfg["intermediate_size"]),
        max_seq_len=int(cfg.get("max_position_embeddings", 2048)),
        rope_theta=float(cfg.get("rope_theta", rope.get("rope_theta", 10000.0))),
        norm_eps=float(cfg.get("rms_norm_eps", 1e-6)), tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        extra={"imported_from": where},
    )


def read_hf_weights(path: Path) -> dict:
    """All tensors of ``model.safetensors`` or of the shards named in ``model.safetensors.index.json``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    index = path / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(read_json(index, "safetensors index").get("weight_map", {}).values()))
    elif (path / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        found = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.pt*"))
        hint = f" (found {', '.join(found[:3])}: re-save it with safe_serialization=True)" if found else ""
        raise LlmlabError(f"{path}: no model.safetensors or model.safetensors.index.json{hint}")
    sd = {}
    for name in files:
        try:
            sd.update(load_file(str(path / name), device="cpu"))
        except (SafetensorError, OSError, ValueError) as e:
            raise LlmlabError(f"{path / name}: cannot read weights ({e})") from None
    return sd


def tokenizer_from_hf(path: Path):
    """``(Tokenizer, order)`` from an HF ``tokenizer.json``, where ``order[our_id]`` is the HF id of that
    token; raises ``LlmlabError`` saying what is unsupported."""
    from llmlab.tokenizer.hf import byte_to_unicode
    from llmlab.tokenizer.tokenizer import SPECIAL_TOKENS, Tokenizer

    file = path / "tokenizer.json"
    where = str(file)
    if not file.is_file():
        raise LlmlabError(f"{where}: not found; pass --tokenizer DIR (an llmlab tokenizer) to import the weights")
    data = read_json(file, "tokenizer file")
    model = data.get("model") or {}

    def refuse(what: str):
        raise LlmlabError(f"{where}: {what}; only byte-level BPE tokenizers convert (pass --tokenizer DIR to "
                          f"use an llmlab tokenizer instead)")

    if model.get("type") != "BPE":
        refuse(f"tokenizer model {model.get('type')!r} is not BPE")
    if model.get("byte_fallback"):
        refuse("a SentencePiece-style BPE with byte fallback is not byte-level")
    if data.get("normalizer"):
        refuse(f"normalizer {data['normalizer'].get('type')!r} is not supported")
    pre = data.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    pattern, byte_level = None, False
    for step in steps:
        kind = step.get("type")
        if kind == "Split" and not step.get("invert") and step.get("behavior") == "Isolated" \
                and "Regex" in (step.get("pattern") or {}) and pattern is None:
            pattern = step["pattern"]["Regex"]
        elif kind == "ByteLevel" and not step.get("add_prefix_space"):
            byte_level = True
            if step.get("use_regex", True):
                if pattern is not None:
                    refuse("two split regexes in the pre-tokenizer")
                pattern = HF_GPT2_PATTERN
        else:
            refuse(f"pre-tokenizer step {kind!r} ({step}) is not supported")
    if not byte_level or pattern is None:
        refuse("the pre-tokenizer is not a byte-level split")

    table = byte_to_unicode()
    added = sorted((t["id"], t["content"]) for t in data.get("added_tokens") or [])
    added_ids = {c: i for i, c in added}
    # Added tokens may or may not also sit in the BPE vocabulary (GPT-2's <|endoftext|> does); either way
    # they are special tokens here, never products of merges.
    vocab = {s: i for s, i in (model.get("vocab") or {}).items() if s not in added_ids}
    ours: dict[str, int] = {}  # byte-level string -> our id
    for b in range(256):
        if table[b] not in vocab:
            refuse(f"byte {b} has no token")
        ours[table[b]] = b
    merges = []
    for i, m in enumerate(model.get("merges") or []):
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a not in ours or b not in ours or (a + b) not in vocab:
            refuse(f"merge {i} ({a!r}, {b!r}) does not build on earlier tokens")
        if a + b in ours:
            refuse(f"merge {i} makes {a + b!r} a second time")
        merges.append((ours[a], ours[b]))
        ours[a + b] = 256 + i
    unreachable = [s for s in vocab if s not in ours]
    if unreachable:
        refuse(f"{len(unreachable)} vocabulary entries (e.g. {unreachable[0]!r}) are not made by any merge")
    # Specials take the last ids in DESIGN.md's order; any others follow in their HF id order.
    names = [s for s in SPECIAL_TOKENS if s in added_ids] + [c for _, c in added if c not in SPECIAL_TOKENS]
    lacking = [s for s in REQUIRED_SPECIALS if s not in names]
    if lacking:
        refuse(f"it lacks llmlab's chat special tokens {lacking}")
    tok = Tokenizer(merges, pattern, names)
    order = [0] * tok.vocab_size
    for s, i in ours.items():
        order[i] = vocab[s]
    for s, i in tok.special_tokens.items():
        order[i] = added_ids[s]
    return tok, order


def import_hf(path: str | Path, out_run: str | Path, tokenizer_dir: str | Path | None = None) -> Path:
    """Load a local ``LlamaForCausalLM`` folder into our model and write it as the run folder ``out_run``."""
    import torch

    from llmlab.model.gpt import GPT, rope_tables
    from llmlab.runs import save_run_model

    path = Path(path)
    if not path.is_dir():
        raise LlmlabError(f"{path}: Hugging Face model folder not found")
    config = model_config_from_hf(read_json(path / "config.json", "Hugging Face config"), str(path / "config.json"))
    raw = read_hf_weights(path)
    sd = {}
    for name, t in raw.items():
        if name.endswith("rotary_emb.inv_freq"):
            continue  # a buffer older transformers saved; we recompute RoPE from rope_theta
        sd[name[len("model."):] if name.startswith("model.") else name] = t.to(torch.float32)
    if config.tie_embeddings:
        head = sd.pop("lm_head.weight", None)
        if head is not None and not torch.equal(head, sd.get("embed_tokens.weight", head)):
            raise LlmlabError(f"{path}: tie_word_embeddings is true but lm_head.weight differs from the embedding")

    if tokenizer_dir is not None:
        from llmlab.tokenizer.tokenizer import Tokenizer

        tokenizer, order = Tokenizer.load(tokenizer_dir), None
    else:
        tokenizer, order = tokenizer_from_hf(path)
    if tokenizer.vocab_size != config.vocab_size:
        raise LlmlabError(f"{path}: the tokenizer has {tokenizer.vocab_size} tokens but the model's vocab_size is "
                          f"{config.vocab_size}")
    if order is not None and order != list(range(len(order))):
        # Renumber the rows into our id layout (bytes, merges, specials).
        idx = torch.tensor(order)
        for key in ("embed_tokens.weight", "lm_head.weight"):
            if key in sd:
                sd[key] = sd[key].index_select(0, idx)

    with torch.device("meta"):
        model = GPT(config)
    model = model.to_empty(device="cpu")
    expected = {k for k in model.state_dict() if not (k == "lm_head.weight" and config.tie_embeddings)}
    missing, unexpected = sorted(expected - set(sd)), sorted(set(sd) - expected)
    if missing or unexpected:
        raise LlmlabError(f"{path}: weights do not match a Llama model (missing {missing[:3]}, unexpected "
                          f"{unexpected[:3]})")
    for k, v in sd.items():
        want = tuple(model.get_parameter(k).shape)
        if tuple(v.shape) != want:
            raise LlmlabError(f"{path}: weight {k} has shape {tuple(v.shape)}, config.json says {want}")
    model.load_state_dict(sd, strict=False)
    if config.tie_embeddings:
        model.lm_head.weight = model.embed_tokens.weight
    model.rope_cos, model.rope_sin = rope_tables(config.head_dim, config.max_seq_len, config.rope_theta)
    save_run_model(out_run, model, tokenizer)
    return Path(out_run)
