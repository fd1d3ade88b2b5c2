"""Machine-text detection: the AUC and ROC arithmetic, the features against a direct computation, and a detector
that recognises its own writing."""

import json

import numpy as np
import pytest
import torch

from llmlab.cli import main
from llmlab.inside.detect import (FEATURES, DetectConfig, auc, generate_continuations, human_chunks, roc,
                                  run_detection, text_features)


def brute_auc(m, h):
    return np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a in m for b in h])


def test_auc_is_the_pairwise_win_rate_with_ties_half():
    rng = np.random.default_rng(0)
    m, h = rng.integers(0, 6, 40).astype(float), rng.integers(0, 5, 30).astype(float)  # many ties
    assert auc(m, h) == pytest.approx(brute_auc(m, h))
    assert auc(m, h, sign=-1) == pytest.approx(1 - brute_auc(m, h))
    assert auc([3, 4], [1, 2]) == 1.0 and auc([1, 2], [3, 4]) == 0.0 and auc([1, 1], [1, 1]) == 0.5


def test_roc_runs_from_0_0_to_1_1_and_its_area_is_the_auc():
    rng = np.random.default_rng(1)
    m, h = rng.normal(1, 1, 50).round(1), rng.normal(0, 1, 70).round(1)
    fpr, tpr = roc(m, h)
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and fpr[-1] == pytest.approx(1) and tpr[-1] == pytest.approx(1)
    assert all(np.diff(fpr) >= 0) and all(np.diff(tpr) >= 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc(m, h))


def test_features_match_a_direct_computation(tiny_run):
    _, model, tok = tiny_run
    prompt, text = "You are all", "You are all resolved rather to die than to famish?"
    f = text_features(model, tok, [text], [prompt])
    ids = [tok.bos_id] + tok.encode(text)
    start = 1 + len(tok.encode(prompt))
    lps, ranks, ents, mus, vars_ = [], [], [], [], []
    for t in range(start, len(ids)):  # one forward pass per position, the distribution for token t
        with torch.no_grad():
            lp = torch.log_softmax(model(torch.tensor([ids[:t]]))[0, -1].double(), -1)
        x = ids[t]
        lps.append(float(lp[x]))
        ranks.append(1 + int((lp > lp[x]).sum()))
        p = lp.exp()
        ents.append(float(-(p * lp).sum()))
        mus.append(float((p * lp).sum()))
        vars_.append(float((p * lp * lp).sum()) - mus[-1] ** 2)
    assert f["tokens"] == [len(lps)]
    assert f["log_likelihood"][0] == pytest.approx(np.mean(lps), abs=1e-4)
    assert f["log_rank"][0] == pytest.approx(np.mean(np.log(ranks)), abs=1e-4)
    assert f["entropy"][0] == pytest.approx(np.mean(ents), abs=1e-4)
    assert f["fast_detectgpt"][0] == pytest.approx((sum(lps) - sum(mus)) / np.sqrt(sum(vars_)), abs=1e-3)


def test_own_samples_have_zero_mean_discrepancy(tiny_run):
    """Text the detector itself samples at temperature 1 sits, on average, exactly at its own expectation: the
    discrepancy is ~N(0, 1) per text. (A check on the features and the sampler together.)"""
    _, model, tok = tiny_run
    cfg = DetectConfig(n=48, new_tokens=24, prompt_tokens=4, seed=3, temperature=1.0, top_p=1.0)
    prompts = ["We know it", "Speak, speak", "Before we", "All"] * 12
    texts, ids = generate_continuations(model, tok, prompts, cfg, with_ids=True)
    z = np.array(text_features(model, tok, texts, prompts, token_ids=ids)["fast_detectgpt"])
    assert abs(z.mean()) < 0.5  # standard error ~0.14
    assert 0.5 < z.std() < 1.6


@pytest.fixture(scope="module")
def human_file(tmp_path_factory):
    from llmlab.data.corpus import split_documents

    path = tmp_path_factory.mktemp("human") / "val.txt"
    path.write_text("".join(split_documents("val"))[:30000])
    return path


def test_human_chunks_are_spread_and_prompted(tiny_run, human_file):
    _, _, tok = tiny_run
    chunks = human_chunks(tok, str(human_file), 10, 8, 32)
    assert len(chunks) == 10 and len({t for _, t in chunks}) == 10
    assert all(t.startswith(p) for p, t in chunks)
    from llmlab.errors import LlmlabError

    with pytest.raises(LlmlabError, match="make only"):
        human_chunks(tok, str(human_file), 100000, 8, 32)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, human_file):
    """A tiny model pretrained for a few seconds on the human text (it writes mostly canonical token sequences,
    as real runs do; a random model's samples do not survive decoding and encoding again)."""
    from llmlab.train.loop import TrainConfig
    from llmlab.train.configs import PretrainConfig
    from llmlab.train.pretrain import run as pretrain

    out = tmp_path_factory.mktemp("trained") / "run"
    pretrain(PretrainConfig(data=str(human_file), out=str(out), preset="tiny", vocab_size=400, samples=0),
             TrainConfig(max_steps=150, seq_len=64, batch_size=8, optimizer="muon", lr=6e-3, warmup_steps=10),
             progress=False)
    return out


@pytest.mark.slow
def test_detector_recognises_its_own_text_and_the_cli_reports_an_imported_run(trained_run, imported_run, human_file,
                                                                               tmp_path, capsys):
    from llmlab.runs import load_run

    model, tok = load_run(trained_run)
    cfg = DetectConfig(human=str(human_file), n=24, prompt_tokens=8, new_tokens=48)  # temperature 0.8, top-p 0.95
    report = run_detection((model, tok), [("self", (model, tok))], cfg)
    g = report["generators"][0]
    assert g["auc"]["fast_detectgpt"] >= 0.9 and g["auc"]["log_likelihood"] > 0.6
    assert set(g["auc"]) == set(FEATURES)
    png = tmp_path / "roc.png"
    run = str(trained_run)
    assert main(["inside", "detect", "--model", run, "--generator", run, "--generator", str(imported_run),
                 "--human", str(human_file), "--n", "12", "--prompt-tokens", "8", "--new-tokens", "24", "--json",
                 "--out", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [x["name"] for x in out["generators"]] == [run, str(imported_run)]
    assert all(0 <= v <= 1 for x in out["generators"] for v in x["auc"].values())
    assert png.read_bytes()[:4] == b"\x89PNG"
    # The imported model has its own (random) weights, and another vocabulary than the detector's: its text is
    # scored as text. Random text is what the trained detector finds least likely of all.
    assert out["generators"][1]["auc"]["log_likelihood"] < 0.5
