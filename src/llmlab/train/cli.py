"""``llmlab pretrain``: train a base model (a document completer) from text; and the flags every training stage shares.

    llmlab pretrain --out runs/base                     # bundled corpus, CPU-speedrun configuration (180 s)
    llmlab pretrain --data corpus/ --val-data val.txt --out runs/base --preset depth-12 --max-steps 5000
    llmlab pretrain --out runs/base --resume            # continue from runs/base/checkpoints/last.pt
    llmlab pretrain --config base.toml --out runs/b2    # settings from [pretrain] and [train]; flags still win
    torchrun --nproc_per_node=2 $(which llmlab) pretrain --out runs/base --max-steps 200

Every training stage's flags are derived from its config dataclass and ``TrainConfig`` (``llmlab.train.configs``),
so the defaults ``--help`` shows are the recipe's: flags left unset take the CPU-speedrun defaults (docs/LOG.md
records how they were chosen); with no horizon (--time-budget / --max-steps / --max-tokens) the run is
time-boxed to 180 s of training. Settings layer as defaults < ``--config FILE`` < explicit flags.
"""

from __future__ import annotations

import argparse
import json

from llmlab.train.configs import PretrainConfig, StageConfig, TrainConfig
from llmlab.utils.config import add_config_flags, file_values, given_flags, layered, read_config_file, require


def add_stage_parser(sub: argparse._SubParsersAction, cls: type[StageConfig], *, help: str,
                     description: str) -> argparse.ArgumentParser:
    """The parser of a training stage: ``cls``'s flags, the loop's flags with the stage's defaults, and
    ``--config`` / ``--resume`` / ``--no-progress``. ``stage_configs(args)`` turns what it parsed into configs."""
    p = sub.add_parser(cls.name, help=help, description=description,
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_config_flags(p, cls)
    add_config_flags(p, TrainConfig, defaults=cls.train_defaults, group="training loop")
    g = p.add_argument_group("run")
    g.add_argument("--config", metavar="FILE", help=f"settings from a TOML/YAML/JSON file with [{cls.name}] and "
                   "[train] sections, or a run's config.json (reproduces that run); explicit flags win")
    g.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(stage_config=cls)
    return p


def stage_configs(args: argparse.Namespace) -> tuple[StageConfig, TrainConfig]:
    """``(stage config, TrainConfig)`` from a stage parser's namespace: dataclass defaults (the loop's with the
    stage's ``train_defaults``) < the ``--config`` file < explicit flags."""
    cls = args.stage_config
    stage_file, train_file = {}, {}
    if getattr(args, "config", None):
        sections, is_run = read_config_file(args.config, cls.name)
        stage_file = file_values(cls, sections[cls.name], f"{args.config}: [{cls.name}]", run_config=is_run)
        train_file = file_values(TrainConfig, sections["train"], f"{args.config}: [train]", run_config=is_run)
    cfg = layered(cls, stage_file, given_flags(args, cls))
    require(cfg, cls.name)
    return cfg, cls.train_config(**{**train_file, **given_flags(args, TrainConfig)})


def progress_flag(args) -> bool | None:
    return False if args.no_progress else None


def register(sub: argparse._SubParsersAction) -> None:
    p = add_stage_parser(sub, PretrainConfig, help="pretrain a base model on text (next-token prediction)",
                         description=__doc__.split("\n\n")[0].split(": ", 1)[1].split(";")[0])
    p.set_defaults(func=_pretrain)


def _pretrain(args) -> int:
    from llmlab.errors import LlmlabError
    from llmlab.train.pretrain import run
    from llmlab.utils.dist import dist_info

    cfg, tcfg = stage_configs(args)
    if cfg.tokenizer and "vocab_size" in given_flags(args, PretrainConfig):
        from llmlab.tokenizer import Tokenizer

        if Tokenizer.load(cfg.tokenizer).vocab_size != cfg.vocab_size:
            raise LlmlabError(f"--vocab-size {cfg.vocab_size} disagrees with the tokenizer in {cfg.tokenizer}; "
                              "drop --vocab-size (the model takes the tokenizer's)")
    result = run(cfg, tcfg, resume=args.resume, progress=progress_flag(args))
    if result.interrupted:
        return 130
    if dist_info()[0] == 0:
        s = {k: v for k, v in result.summary.items() if k != "samples"}
        print(json.dumps(s))
    return 0
