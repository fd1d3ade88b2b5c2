"""Device kernels, swapped into a plain model from outside (as torchtitan's model converters do).

    from llmlab.model.kernels import convert
    model = convert(model, device)       # in place: the layers' classes become the device's fast subclasses

``model/gpt.py`` is the reference: plain PyTorch that runs everywhere. Speed code for one kind of device lives
here, as subclasses of the plain layers with the same parameters, and ``convert`` puts it in: ``cpu.py`` on a
CPU (hand-written RMSNorm/RoPE autograd, float32 attention under autocast, oneDNN products); nothing yet on
CUDA, where the plain layers (or ``torch.compile``) are the fast ones. The training loop converts the model it
trains, ``runs.load_model`` the models it loads; the inference engine has its own converter of the decode math
(``infer/fused.py``, ``infer/compiled.py``). Every kernel has a parity test against the plain model
(tests/model/test_kernels.py).
"""

from __future__ import annotations

import torch


def convert(model: torch.nn.Module, device: torch.device | str) -> torch.nn.Module:
    """Put ``device``'s kernels into every GPT inside ``model`` (in place; returns ``model``)."""
    if torch.device(device).type == "cpu":
        from llmlab.model.kernels import cpu

        cpu.convert(model)
    return model
