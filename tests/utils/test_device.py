"""Device names: auto, cpu, cuda:N, and one-line errors for ones this machine lacks (no GPU needed).

    .venv/bin/pytest tests/utils/test_device.py -q
"""

import pytest
import torch

from llmlab.errors import LlmlabError
from llmlab.utils.device import resolve_device


def test_names_and_errors(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(LlmlabError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(LlmlabError, match="CUDA is not available"):
        resolve_device("cuda")


def test_more_torchrun_processes_than_gpus_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert resolve_device("auto") == torch.device("cuda", 0)
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(LlmlabError, match=r"cuda:1 requested but this machine has 1 GPU\(s\) \(torchrun's local "
                       r"rank 1: start at most 1 processes per node, or use --device cpu\)"):
        resolve_device("auto")
    with pytest.raises(LlmlabError, match="cuda:3 requested"):
        resolve_device("cuda:3")
