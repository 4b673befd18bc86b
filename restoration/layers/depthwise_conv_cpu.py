"""The ``'cpu'`` backend of :func:`restoration.layers.depthwise_conv.depthwise_conv2d`: a hand-written backward.

For ``y = conv2d(x, w, b, padding=p, dilation=d, groups=C)`` (stride 1):

* ``dL/dx`` is the depthwise convolution of ``dL/dy`` with the filters flipped in both axes, padding
  ``d (k - 1) - p`` (a transposed convolution of stride 1 is a convolution with the flipped filter);
* ``dL/dw[c, 0, i, j] = sum over (b, h, w) of dL/dy[b, c, h, w] * x_padded[b, c, h + d i, w + d j]``, one
  per-channel sum of products for each of the ``k^2`` taps;
* ``dL/db[c] = sum over (b, h, w) of dL/dy[b, c, h, w]``.

Only the arithmetic order differs from ``F.conv2d``'s backward (float rounding). Not twice differentiable.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["DepthwiseConvCPU"]


class DepthwiseConvCPU(torch.autograd.Function):
    """``F.conv2d(x, w, b, padding, dilation, groups=C)`` whose backward is computed as the module docstring says."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int,
                dilation: int) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.dilation, ctx.has_bias = padding, dilation, bias is not None
        return F.conv2d(x, weight, bias, padding=padding, dilation=dilation, groups=x.shape[1])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        # under autocast the forward convolved x and weight cast to a lower precision: do the same here (autograd
        # casts each gradient back to its input's dtype)
        x, weight = x.to(grad.dtype), weight.to(grad.dtype)
        p, d = ctx.padding, ctx.dilation
        channels, k = x.shape[1], weight.shape[-1]
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            flipped = weight.flip(2, 3)
            back = d * (k - 1) - p
            if back >= 0:
                grad_x = F.conv2d(grad, flipped, padding=back, dilation=d, groups=channels)
            else:  # more padding than the filter reach: the transposed convolution crops
                grad_x = F.conv2d(grad, flipped, padding=0, dilation=d, groups=channels)[..., -back:back, -back:back]
        if ctx.needs_input_grad[1]:
            padded = F.pad(x, (p, p, p, p))
            h, w = grad.shape[-2:]
            # (a product and a reduction per tap: several times faster here than einsum's bmm layout)
            taps = [(grad * padded[:, :, d * i:d * i + h, d * j:d * j + w]).sum((0, 2, 3))
                    for i in range(k) for j in range(k)]
            grad_w = torch.stack(taps, dim=1).view_as(weight)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None
