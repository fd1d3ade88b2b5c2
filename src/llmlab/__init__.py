"""llmlab: build a ChatGPT-like assistant from scratch, stage by stage.

Data cleaning -> byte-level BPE tokenizer -> Transformer pretraining -> supervised fine-tuning ->
preference learning (reward model, PPO, DPO, GRPO) -> inference engine -> chat, export.

Command line: ``llmlab --help``. Python: ``model, tokenizer = llmlab.load("runs/my-run")``.
"""

__version__ = "0.1.0"


def load(run_dir, device: str = "cpu"):
    """Load ``(model, tokenizer)`` from a run folder written by any training stage.

    Imported lazily so that ``import llmlab`` stays cheap (no torch import).
    """
    from llmlab.runs import load_run

    return load_run(run_dir, device=device)
