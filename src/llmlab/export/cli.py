"""``llmlab export`` and ``llmlab import``: wiring only; the work is in ``hf.py``, ``gguf.py``, ``gguf_import.py``
and ``binfile.py``.

    llmlab export hf   --model RUN --out DIR
    llmlab export gguf --model RUN --out FILE.gguf [--dtype f32|f16|q8_0]
    llmlab export bin  --model RUN --out model.bin     # then: python -m llmlab.standalone.run model.bin --prompt ...
    llmlab import hf   --path DIR --out RUN [--tokenizer TOKDIR]
    llmlab import gguf --path FILE.gguf --out RUN
"""

from __future__ import annotations

import argparse

GGUF_DTYPES = ("f32", "f16", "q8_0")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a run to Hugging Face, GGUF (llama.cpp) or model.bin",
                       description="Export a trained run folder to the formats other tools run.")
    esub = p.add_subparsers(dest="export_command", metavar="<format>", required=True)

    q = esub.add_parser("hf", help="a LlamaForCausalLM folder (safetensors, config, tokenizer, chat template)")
    q.add_argument("--model", required=True, help="run folder to export")
    q.add_argument("--out", required=True, help="output folder")
    q.set_defaults(func=_export_hf)

    q = esub.add_parser("gguf", help="a GGUF file for llama.cpp (llama architecture, gpt2 byte-level BPE)")
    q.add_argument("--model", required=True, help="run folder to export")
    q.add_argument("--out", required=True, help="output .gguf file")
    # No argparse `choices`: a bad dtype must be the same one-line llmlab error the library raises.
    q.add_argument("--dtype", default="f32", help=f"weight type: {' | '.join(GGUF_DTYPES)} (default f32)")
    q.set_defaults(func=_export_gguf)

    q = esub.add_parser("bin", help="one model.bin (config, tokenizer, fp32 weights) for llmlab/standalone/run.py")
    q.add_argument("--model", required=True, help="run folder to export")
    q.add_argument("--out", required=True, help="output file, e.g. model.bin")
    q.set_defaults(func=_export_bin)

    p = sub.add_parser("import", help="import a Llama-family model (Hugging Face folder or GGUF file) as a run folder",
                       description="Import a local Llama-family model (LlamaForCausalLM, MistralForCausalLM; "
                                   "GGUF architecture llama) into a run folder.")
    isub = p.add_subparsers(dest="import_command", metavar="<format>", required=True)
    q = isub.add_parser("gguf", help="a llama.cpp GGUF file (F32/F16/BF16, Q8_0, Q4_0/1, Q5_0/1, Q2_K..Q6_K)")
    q.add_argument("--path", required=True, help="the .gguf file")
    q.add_argument("--out", required=True, help="run folder to write")
    q.set_defaults(func=_import_gguf)
    q = isub.add_parser("hf", help="a local LlamaForCausalLM / MistralForCausalLM folder (config.json + safetensors)")
    q.add_argument("--path", required=True, help="Hugging Face model folder")
    q.add_argument("--out", required=True, help="run folder to write")
    q.add_argument("--tokenizer", default=None,
                   help="an llmlab tokenizer folder to use instead of converting the folder's tokenizer.json")
    q.set_defaults(func=_import_hf)


def _export_hf(args) -> int:
    from llmlab.export.hf import export_hf

    print(f"wrote {export_hf(args.model, args.out)}")
    return 0


def _export_gguf(args) -> int:
    from llmlab.export.gguf import export_gguf

    print(f"wrote {export_gguf(args.model, args.out, dtype=args.dtype)}")
    return 0


def _export_bin(args) -> int:
    from llmlab.export.binfile import export_bin

    print(f"wrote {export_bin(args.model, args.out)}")
    return 0


def _import_hf(args) -> int:
    from llmlab.export.hf import import_hf

    print(f"wrote {import_hf(args.path, args.out, tokenizer_dir=args.tokenizer)}")
    return 0


def _import_gguf(args) -> int:
    from llmlab.export.gguf_import import import_gguf

    print(f"wrote {import_gguf(args.path, args.out)}")
    return 0
