"""Output head + cross-entropy in one pass over row chunks, never holding the (tokens, vocab) logits.

    from llmlab.model.fused_ce import linear_cross_entropy
    loss = linear_cross_entropy(h, weight, targets)     # == F.cross_entropy(h @ weight.T, targets, ignore_index=-1)

``GPT.forward(idx, targets=...)`` uses it for training, through its ``lm_loss`` module (``LinearCrossEntropy``). Why: the usual head + loss materialises the logits
(N x V), a float32 copy of them, and their gradient: 3 x 4 B x N x V, which for a GPT-2-sized vocabulary
(V = 50304) and 16 x 1024 tokens is 10 GB, more than the model. Here each chunk of rows computes its logits,
log-sum-exp, loss and at once the gradient of the loss (softmax - one_hot) / n, turns that into the gradients
of the hidden states and of the head weight, and drops the logits. The backward pass only scales the stored
gradients by the incoming one. Same FLOPs as head + loss forward and backward; the memory is one chunk of
logits. Targets equal to ``ignore_index`` are not scored (their rows get zero gradient); the loss is the mean
over scored targets (F.cross_entropy's "mean" with ignore_index).

Under autocast the matmuls run in the autocast dtype (as ``nn.Linear`` would); softmax, loss and the weight's
gradient accumulate in float32 (float64 stays float64) and come back in the dtypes of ``h`` and ``weight``.
The products are ``torch.mm``'s unless ``products`` is given: the CPU kernels (``model/kernels/cpu.py``) pass
oneDNN's for float32 products (``kernels/onednn.py``: MKL's sgemm takes its AVX2 path on AMD CPUs).
"""

from __future__ import annotations

import torch
import torch.nn as nn


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, targets, ignore_index: int, chunk_rows: int, mm_dtype, want_grad: bool, products):
        # h (N, d), weight (V, d), targets (N,) long
        N = h.shape[0]
        valid = targets != ignore_index
        n = valid.sum()
        acc = torch.promote_types(mm_dtype, torch.float32)  # softmax/loss/gradient accumulation: >= float32
        scale = 1.0 / n.clamp(min=1).to(acc)  # mean over scored targets
        w = weight.to(mm_dtype)
        need_h, need_w = want_grad and ctx.needs_input_grad[0], want_grad and ctx.needs_input_grad[1]
        # Every row of grad_h is written by its chunk (ignored rows with zeros), so it need not start at zero.
        grad_h = torch.empty_like(h) if need_h else None
        # grad_w is written by the first chunk's product, added to by the others (no zero-filled start).
        grad_w = None
        if need_w:
            grad_w = (torch.empty if N else torch.zeros)(weight.shape, dtype=acc, device=weight.device)
        # Products: the given kernels' (oneDNN's on a CPU: MKL's sgemm is slow on AMD CPUs) where they apply,
        # else torch.mm.
        fast = products is not None and products.applies(h, w)
        # Reused buffers: a fresh (c, V) tensor per chunk costs a page fault per 4 KiB on a CPU (glibc hands such
        # sizes back to the OS on free), which was ~15% of this function's time. ``buf`` holds the float32
        # logits / softmax (oneDNN writes fresh logits, so it needs none); under autocast ``low`` holds the
        # bf16/fp16 product and then the gradient of the logits in that dtype, ``low_w`` the (V, d) product for the
        # weight's gradient.
        rows = min(chunk_rows, N)
        buf = None if fast else torch.empty((rows, weight.shape[0]), dtype=acc, device=h.device)
        low = low_w = None
        if mm_dtype != acc:
            low = torch.empty((rows, weight.shape[0]), dtype=mm_dtype, device=h.device)
            low_w = torch.empty(weight.shape, dtype=mm_dtype, device=h.device) if need_w else None
        wt = w.t()
        loss = torch.zeros((), dtype=acc, device=h.device)
        for r0 in range(0, N, chunk_rows):
            hc = h[r0:r0 + chunk_rows].to(mm_dtype)  # (c, d)
            c = hc.shape[0]
            tc, vc = targets[r0:r0 + chunk_rows], valid[r0:r0 + chunk_rows]
            safe_t = torch.where(vc, tc, 0).unsqueeze(1)  # (c, 1); ignored rows point at class 0, then masked
            # log-sum-exp with a single exp pass: p = exp(logits - max) is also the unnormalised softmax the
            # gradient needs (torch.logsumexp would exp once more and allocate a (c, V) temporary).
            if fast:
                logits = products.mm_t(hc, w)  # (c, V)
            elif low is None:
                logits = torch.mm(hc, wt, out=buf[:c])
            else:  # a bf16/fp16 product, converted (mixed-dtype elementwise ops take a slow unvectorised path)
                logits = buf[:c].copy_(torch.mm(hc, wt, out=low[:c]))
            row_max = logits.amax(dim=1, keepdim=True)  # (c, 1)
            target_logit = logits.gather(1, safe_t).squeeze(1)
            p = logits.sub_(row_max).exp_()
            z = p.sum(dim=1, keepdim=True)  # (c, 1)
            lse = (row_max + z.log()).squeeze(1)  # (c,)
            loss += ((lse - target_logit) * vc).sum()
            if not (need_h or need_w):
                continue
            # d loss / d logits = (softmax - one_hot) * scale on scored rows, 0 on ignored rows.
            row_scale = (vc.to(acc) * scale).unsqueeze(1)  # (c, 1)
            g = p.mul_(row_scale / z)  # softmax * scale
            g.scatter_add_(1, safe_t, -row_scale)
            if low is not None:
                g = low[:c].copy_(g)
            if need_h:
                if fast:
                    grad_h[r0:r0 + c] = products.mm_t(g, wt)  # (c, d) = g @ w
                elif g.dtype == h.dtype:
                    torch.mm(g, w, out=grad_h[r0:r0 + c])
                else:
                    grad_h[r0:r0 + c] = g @ w
            if need_w:  # (V, d) g.T @ hc: the first chunk writes grad_w, the others add to it
                if g.dtype == acc and not fast:
                    if r0 == 0:
                        torch.mm(g.t(), hc, out=grad_w)
                    else:
                        grad_w.addmm_(g.t(), hc)
                else:  # oneDNN's fresh product, or the bf16/fp16 one in its reused buffer
                    prod = products.mm_tn(g, hc) if fast else torch.mm(g.t(), hc, out=low_w)
                    if r0 == 0:
                        grad_w.copy_(prod)
                    else:
                        grad_w.add_(prod)
        ctx.save_for_backward(grad_h, grad_w)
        ctx.weight_dtype = weight.dtype
        return loss * scale

    @staticmethod
    def backward(ctx, grad_loss):
        grad_h, grad_w = ctx.saved_tensors
        if grad_loss.device.type == "cpu" and grad_loss.item() == 1.0:
            # loss.backward(): the stored gradients are the answer. Not multiplying saves a fresh (V, d) tensor
            # (at V = 50304 its page faults alone cost ~70 ms on a CPU) and lets autograd add the tied embedding's
            # gradient in place. On other devices .item() would wait for the device; there the product is cheap.
            return grad_h, grad_w.to(ctx.weight_dtype) if grad_w is not None else None, *[None] * 6
        gh = grad_h * grad_loss.to(grad_h.dtype) if grad_h is not None else None
        gw = (grad_w * grad_loss).to(ctx.weight_dtype) if grad_w is not None else None
        return gh, gw, *[None] * 6


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, *,
                         ignore_index: int = -1, chunk_rows: int = 1024, products=None) -> torch.Tensor:
    """Mean cross-entropy of ``h @ weight.T`` (h (N, d), weight (V, d)) against ``targets`` (N,).

    ``products``: optional matmul kernels, an object with ``applies(h, w)``, ``mm_t(a, b)`` (a @ b.T) and
    ``mm_tn(a, b)`` (a.T @ b), used where ``applies`` says so (``model/kernels/onednn.py`` is one)."""
    mm_dtype = h.dtype
    if torch.is_autocast_enabled(h.device.type):
        mm_dtype = torch.get_autocast_dtype(h.device.type)
    with torch.autocast(h.device.type, enabled=False):
        # Under no_grad (evaluation) the gradient matmuls are skipped: the forward alone is a plain loss.
        return _LinearCrossEntropy.apply(h, weight, targets, ignore_index, chunk_rows, mm_dtype,
                                         torch.is_grad_enabled(), products)


class LinearCrossEntropy(nn.Module):
    """``linear_cross_entropy`` as a module without weights: ``GPT.lm_loss(h, head_weight, targets)``. A module,
    so that a device's kernels can be swapped in from outside (``model/kernels``) as for the other layers."""

    products = None  # torch.mm; the CPU kernels' subclass sets oneDNN's

    def forward(self, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return linear_cross_entropy(h, weight, targets, products=self.products)
