"""Each recipe lives in one place: the config dataclasses (llmlab.train.configs, SynthConfig, RLDataConfig).

A CLI default, a library default or a speedrun value that disagrees with them fails here; --config files layer
under explicit flags; a run's config.json fed back with --config resolves to the configs of that run.
"""

import dataclasses
import importlib
import inspect
import json
import math

import pytest
import torch
from rl_fixtures import make_run, toy_pairs, write_jsonl

from llmlab.cli import build_parser, main
from llmlab.errors import ConfigError, LlmlabError
from llmlab.speedrun import Speedrun, SpeedrunConfig
from llmlab.tasks.pref_synth import RLDataConfig
from llmlab.tasks.synth import SynthConfig
from llmlab.train.cli import stage_configs
from llmlab.train.configs import (HORIZON, STAGE_CONFIGS, DPOConfig, GRPOConfig, PPOConfig, PretrainConfig,
                                  RankedPairsConfig, RMConfig, SFTConfig, TrainConfig)
from llmlab.utils.config import given_flags, layered

# Each command with only its required flags, and what it must resolve to.
REQUIRED = {
    PretrainConfig: ["pretrain", "--out", "O"],
    SFTConfig: ["sft", "--model", "M", "--out", "O"],
    RMConfig: ["rm", "--model", "M", "--data", "D", "--out", "O"],
    DPOConfig: ["dpo", "--model", "M", "--data", "D", "--out", "O"],
    PPOConfig: ["ppo", "--model", "M", "--reward-model", "R", "--prompts", "P", "--out", "O"],
    GRPOConfig: ["grpo", "--model", "M", "--prompts", "P", "--out", "O"],
    RankedPairsConfig: ["ranked-pairs", "--model", "M", "--reward-model", "R", "--prompts", "P", "--out", "O"],
    RLDataConfig: ["rl-data", "--out", "O"],
    SynthConfig: ["chat", "synth", "--out", "O"],
}
# Where each config's library code lives: no function there may carry a default of its own for a setting.
MODULES = {
    PretrainConfig: ["llmlab.train.pretrain"],
    SFTConfig: ["llmlab.train.sft"],
    RMConfig: ["llmlab.train.rm", "llmlab.model.heads"],
    DPOConfig: ["llmlab.train.dpo"],
    PPOConfig: ["llmlab.train.ppo"],
    GRPOConfig: ["llmlab.train.grpo"],
    RankedPairsConfig: ["llmlab.train.ranked_pairs"],
    RLDataConfig: ["llmlab.tasks.pref_synth"],
    SynthConfig: ["llmlab.tasks.synth"],
    TrainConfig: ["llmlab.train.loop"],
}
RUN_FLAGS = {"help", "config", "resume", "no_progress"}  # actions, not settings


def resolve(argv):
    """What a command line resolves to, without running anything: (config, TrainConfig or None)."""
    args = build_parser().parse_args(argv)
    if getattr(args, "stage_config", None):
        return stage_configs(args)
    cls = next(c for c, a in REQUIRED.items() if a[: len(argv[:2])] == argv[:2] and c not in STAGE_CONFIGS)
    return layered(cls, given_flags(args, cls)), None


def subparser(*names):
    p = build_parser()
    for name in names:
        p = p._subparsers._group_actions[0].choices[name]
    return p


def required(cls):
    return {f.name: v for f in dataclasses.fields(cls) if (v := _value_after(REQUIRED[cls], f))}


def _value_after(argv, f):
    from llmlab.utils.config import flag_name

    flag = flag_name(f)
    return argv[argv.index(flag) + 1] if flag in argv else None


@pytest.mark.parametrize("cls", list(REQUIRED), ids=lambda c: c.__name__)
def test_cli_defaults_are_the_dataclass_defaults(cls):
    cfg, tcfg = resolve(REQUIRED[cls])
    assert cfg == cls(**required(cls))
    if cls in STAGE_CONFIGS:
        assert tcfg == cls.train_config()
        for k, v in cls.train_defaults.items():  # the stage's recipe reached the loop's config
            assert getattr(tcfg, k) == v, k
    # Every flag of the command is a field's (no flag with a default of its own), except the run actions.
    fields = {f.name for f in dataclasses.fields(cls)} | ({f.name for f in dataclasses.fields(TrainConfig)}
                                                          if cls in STAGE_CONFIGS else set())
    parser = subparser(*REQUIRED[cls][:2]) if cls is SynthConfig else subparser(REQUIRED[cls][0])
    for action in parser._actions:
        assert action.dest in fields | RUN_FLAGS, f"{REQUIRED[cls][0]}: flag {action.option_strings} is no setting"
        if action.dest in fields:
            assert action.default == "==SUPPRESS==", action.option_strings  # the field's default applies


def test_stage_recipes_name_only_loop_settings_and_horizons_replace_the_time_budget():
    loop_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for cls in STAGE_CONFIGS:
        assert set(cls.train_defaults) <= loop_fields, cls.__name__
        assert cls.name and importlib.import_module(f"llmlab.train.{cls.name}").run
    assert PretrainConfig.train_config().time_budget == 180.0
    assert PretrainConfig.train_config(max_steps=5).time_budget == 0.0  # 5 steps, not "5 steps or 180 s"
    assert RMConfig.train_config(time_budget=9.0).max_steps == 600  # a default step cap stays


@pytest.mark.parametrize("cls", list(MODULES), ids=lambda c: c.__name__)
def test_library_functions_carry_no_stray_defaults(cls):
    """A parameter named like a setting either has no default or the dataclass's (the drift the issue found:
    train_grpo's group 8 / 16 prompts / KL 0 against the CLI's 4 / 32 / 0.1)."""
    defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
    found = []
    for name in MODULES[cls]:
        mod = importlib.import_module(name)
        for obj in vars(mod).values():
            if getattr(obj, "__module__", None) != name:
                continue
            funcs = [obj] if inspect.isfunction(obj) else [m for m in vars(obj).values() if inspect.isfunction(m)] \
                if inspect.isclass(obj) and not dataclasses.is_dataclass(obj) else []
            for fn in funcs:
                for p in inspect.signature(fn).parameters.values():
                    if p.name in defaults and p.default is not p.empty and p.default != defaults[p.name]:
                        found.append(f"{name}.{fn.__qualname__}({p.name}={p.default!r}); {cls.__name__}: "
                                     f"{defaults[p.name]!r}")
    assert not found, found


def test_every_stage_runs_as_run_config_train_config():
    for cls in STAGE_CONFIGS:
        params = list(inspect.signature(importlib.import_module(f"llmlab.train.{cls.name}").run).parameters.values())
        assert [p.kind for p in params[:2]] == [inspect.Parameter.POSITIONAL_OR_KEYWORD] * 2, cls.name
        assert params[1].default is None  # None: the stage's recipe, cls.train_config()
        assert all(p.kind == p.KEYWORD_ONLY and p.default is not p.empty for p in params[2:]), cls.name


@pytest.mark.parametrize("quick", [False, True])
def test_speedrun_values_are_what_each_stage_resolves(tmp_path, quick):
    """Each stage's command line, parsed by the CLI, gives exactly the configs the speedrun built; and it holds
    only what the speedrun changes (plus the horizons, which travel together)."""
    from llmlab.utils.config import flag_name

    stages = Speedrun(SpeedrunConfig(out=str(tmp_path / "run"), quick=quick)).stages()
    checked = 0
    for st in stages:
        if st.config is None:
            continue
        cfg, tcfg = resolve(st.argv)
        assert cfg == st.config, st.name
        assert tcfg == st.train_config, st.name
        allowed = {flag_name(f) for f in dataclasses.fields(cfg)
                   if getattr(cfg, f.name) != getattr(type(cfg)(), f.name)}
        if tcfg is not None:
            base = type(cfg).train_config()
            allowed |= {flag_name(f) for f in dataclasses.fields(tcfg)
                        if getattr(tcfg, f.name) != getattr(base, f.name)
                        or (f.name in HORIZON and getattr(tcfg, f.name))}
        given = {a for a in st.argv if a.startswith("--")}
        assert given <= allowed | {"--no-" + f[2:] for f in allowed}, (st.name, given - allowed)
        checked += 1
    assert checked == 8  # pretrain, sft, prefdata, rm, dpo-pairs, dpo, grpo, ppo


def test_config_file_layers_between_defaults_and_flags(tmp_path):
    toml = tmp_path / "rm.toml"
    toml.write_text('[rm]\nmodel = "runs/sft"\ndata = "pairs.jsonl"\nlm_coef = 0.5\nhead_layers = 2\n\n'
                    '[train]\nlr = 1e-3\nmax_steps = 7\nseed = 3\n')
    cfg, tcfg = resolve(["rm", "--config", str(toml), "--out", "o", "--lm-coef", "0.25", "--seed", "4"])
    assert cfg == RMConfig(model="runs/sft", data="pairs.jsonl", out="o", lm_coef=0.25, head_layers=2)
    assert tcfg == RMConfig.train_config(lr=1e-3, max_steps=7, seed=4)
    assert tcfg.min_lr_frac == 0.1  # the rest of RM's recipe stays
    # ints where floats are expected are fine; a flag still supplies what the file leaves out
    assert resolve(["rm", "--config", str(toml), "--out", "o"])[1].lr == 1e-3
    yaml = pytest.importorskip("yaml", reason="YAML config files need PyYAML (TOML needs nothing)")
    y = tmp_path / "rm.yaml"
    y.write_text(yaml.safe_dump({"rm": {"model": "runs/sft", "data": "pairs.jsonl", "lm_coef": 0.5, "head_layers": 2},
                                 "train": {"lr": 1e-3, "max_steps": 7, "seed": 3}}))
    assert resolve(["rm", "--config", str(y), "--out", "o", "--lm-coef", "0.25", "--seed", "4"]) == (cfg, tcfg)


@pytest.mark.parametrize("text, msg", [
    ('[rm]\nlm_cof = 1.0\n', "[rm]: unknown setting 'lm_cof' for RMConfig (did you mean 'lm_coef'?)"),
    ('[rm]\nlm_coef = "high"\n', "[rm]: lm_coef: expected float, got 'high'"),
    ('[rm]\nout = "elsewhere"\n', "out is given on the command line (--out)"),
    ('[rn]\nlm_coef = 1.0\n', "unknown section(s) rn; this command reads [rm], [train]"),
    ('[train]\nschedule = "linear"\n', "schedule must be one of"),
    ('[rm]\ndev_frac = 1.5\n', "--dev-frac in [0, 1)"),
    ('[rm\n', "malformed TOML"),
])
def test_config_file_mistakes_are_one_line_errors(tmp_path, capsys, text, msg):
    f = tmp_path / "c.toml"
    f.write_text(text)
    assert main(["rm", "--model", "m", "--data", "d", "--out", str(tmp_path / "o"), "--config", str(f)]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_required_settings_come_from_flags_or_the_file(tmp_path, capsys):
    assert main(["rm", "--data", "d", "--out", str(tmp_path / "o")]) == 2
    assert "rm needs --model (or model in the --config file)" in capsys.readouterr().err


def test_library_callers_get_the_checks_the_cli_had(tmp_path):
    for build, msg in ((lambda: GRPOConfig(group_size=1), "--group-size must be at least 2"),
                       (lambda: GRPOConfig(reward="exact,nope"), "unknown reward function(s) ['nope']"),
                       (lambda: GRPOConfig(advantage="ppo"), "advantage must be one of grpo, drgrpo"),
                       (lambda: DPOConfig(beta=0.0), "--beta must be positive"),
                       (lambda: RMConfig(dev_frac=1.0), "--dev-frac in [0, 1)"),
                       (lambda: PPOConfig(kl_coef=0.0, kl_target=2.0), "a KL target needs a positive KL coefficient"),
                       (lambda: RankedPairsConfig(samples=1), "--samples must be at least 2"),
                       (lambda: RLDataConfig(task_shares={"spell": 0.5}), "unknown kind(s) spell"),
                       (lambda: dataclasses.replace(SFTConfig(), epochs=-1.0), "--epochs must be at least 0")):
        with pytest.raises(ConfigError, match=msg.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            build()
    assert issubclass(ConfigError, LlmlabError) and issubclass(ConfigError, ValueError)
    assert RMConfig(model=tmp_path).model == str(tmp_path)  # a Path is kept as text (JSON-ready)


def test_speedrun_and_chat_synth_write_the_sft_stage_conversations():
    """chat synth writes what `sft --data bundled` trains on: one count, one seed (the drift was 4000 vs 40000)."""
    s = SFTConfig()
    assert (s.n_train, s.n_val, s.synth_seed) == (SynthConfig.n_train, SynthConfig.n_val, SynthConfig.seed)
    assert resolve(REQUIRED[SynthConfig])[0].n_train == s.n_train == 40000


@pytest.mark.slow
def test_a_runs_config_json_fed_back_reproduces_it(tmp_path, capsys):
    base = make_run(tmp_path / "base")
    data = write_jsonl(tmp_path / "pairs.jsonl", toy_pairs(16))
    val = write_jsonl(tmp_path / "val.jsonl", toy_pairs(24)[16:])
    argv = ["rm", "--model", str(base), "--data", str(data), "--val", str(val), "--no-progress", "--max-steps", "6",
            "--lr", "3e-3", "--batch-size", "8", "--warmup-steps", "1", "--head-layers", "all", "--lm-coef", "0.5",
            "--device", "cpu", "--seed", "5"]
    first_cfg, first_tcfg = resolve(argv + ["--out", str(tmp_path / "rm")])
    torch.manual_seed(0)  # the reward head is initialised before the loop seeds (as a fresh process would have it)
    assert main(argv + ["--out", str(tmp_path / "rm")]) == 0
    written = json.loads((tmp_path / "rm" / "config.json").read_text())
    assert written["format"] == "llmlab-run-config" and written["rm"]["lm_coef"] == 0.5

    again = ["rm", "--config", str(tmp_path / "rm" / "config.json"), "--out", str(tmp_path / "rm2"), "--no-progress"]
    cfg, tcfg = resolve(again)
    assert cfg == dataclasses.replace(first_cfg, out=str(tmp_path / "rm2")) and tcfg == first_tcfg
    torch.manual_seed(0)
    assert main(again) == 0
    one, two = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("rm", "rm2"))
    assert one["steps"] == two["steps"] == 6
    assert math.isclose(one["val_loss"], two["val_loss"], rel_tol=1e-6)
    # A config.json from another stage's run is refused, not half-applied.
    assert main(["dpo", "--config", str(tmp_path / "rm" / "config.json"), "--out", str(tmp_path / "d")]) == 2
    assert "a run config without a 'dpo' section (a run of another stage: 'rm')" in capsys.readouterr().err


@pytest.mark.slow
def test_pretrain_config_json_fed_back_resolves_to_the_same_configs(tmp_path, tok_dir, text_files):
    argv = ["pretrain", "--data", str(text_files / "train.txt"), "--val-data", str(text_files / "val.txt"),
            "--tokenizer", str(tok_dir), "--preset", "tiny", "--n-layer", "1", "--seq-len", "32", "--batch-size", "4",
            "--max-steps", "3", "--samples", "0", "--no-progress", "--device", "cpu"]
    assert main(argv + ["--out", str(tmp_path / "a")]) == 0
    first_cfg, first_tcfg = resolve(argv + ["--out", str(tmp_path / "b")])
    cfg, tcfg = resolve(["pretrain", "--config", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "b")])
    assert cfg == first_cfg
    written = json.loads((tmp_path / "a" / "config.json").read_text())["train"]
    assert tcfg == TrainConfig(**written)  # what the run trained with (dtype resolved for this CPU)
    assert dataclasses.replace(tcfg, dtype="auto") == first_tcfg
