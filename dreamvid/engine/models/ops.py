"""Layers the converted TensorFlow and Caffe networks need: TF 'SAME' padding, cross-channel LRN.

Video frames come in every size, so padding is computed per input: TensorFlow's SAME puts the
odd padding pixel at the bottom/right, which for a stride-2 layer depends on whether the side
is odd or even (a fixed pad, right for 224x224, shifts every feature map of a 257-pixel frame).
"""

from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


def same_padding(size: int, kernel: int, stride: int) -> Tuple[int, int]:
    """TF SAME padding of one side: (before, after), the odd pixel after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding computed for the actual input size.

    The Lite0 weights come from TensorFlow, where stride-2 layers pad more on the bottom/right;
    symmetric padding shifts every feature map by half a pixel and costs accuracy.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        weight = self.weight
        if pad_h % 2 or pad_w % 2:
            # TF puts the odd padding pixel at the bottom/right. Padding symmetrically with one more
            # pixel, for a kernel one tap larger whose first (top/left) tap is zero, gives the same
            # sums with no padded copy of the input (the copy and its backward cost more than the
            # conv itself here). Measured: the same outputs bit for bit, input gradients within
            # 3e-7 of their largest value (fp32; the backward sums in another order).
            weight = F.pad(weight, [pad_w % 2, 0, pad_h % 2, 0])  # (keeps the weight's memory format)
            pad_h, pad_w = pad_h + pad_h % 2, pad_w + pad_w % 2
        padding = (pad_h // 2, pad_w // 2)
        if self.groups > 1 and self.stride != (1, 1) and x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # oneDNN's bf16 backward of a strided depthwise conv is 2-8x slower than its fp32 one
            # on an AVX512-BF16 CPU (bench/depthwise.py; bench/RESULTS.md, "Strided depthwise
            # convolutions"), stride-1 ones are faster in bf16: the strided layers run in fp32,
            # the rest of the network in the autocast precision.
            with torch.autocast("cpu", enabled=False):  # (the weights are stored in fp32)
                return F.conv2d(x.float(), weight, self.bias, self.stride, padding, self.dilation, self.groups)
        return F.conv2d(x, weight, self.bias, self.stride, padding, self.dilation, self.groups)


def same_max_pool2d(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TF max pool with SAME padding: (B, C, H, W) -> (B, C, ceil(H/s), ceil(W/s)).

    TF's padded positions never win the max: padding with -inf is the same thing.
    """
    top, bottom = same_padding(x.shape[-2], kernel, stride)
    left, right = same_padding(x.shape[-1], kernel, stride)
    if top or bottom or left or right:
        x = F.pad(x, [left, right, top, bottom], value=float("-inf"))
    return F.max_pool2d(x, kernel, stride)


class LocalResponseNorm(nn.Module):
    """Cross-channel LRN, x / (bias + alpha · Σ x² over ±depth_radius channels)^beta, on (B, C, H, W).

    The windowed sum is a 1x1 convolution of x² with a banded 0/1 matrix (C x C): the same as
    ``F.local_response_norm`` up to summation order (1.2e-7 relative), 2-4x faster forward+backward
    on the CPU and at home in channels_last (F.local_response_norm pools a 5-D copy). The band is
    a non-persistent buffer: state dicts do not change.
    """

    def __init__(self, channels: int, depth_radius: int, bias: float, alpha: float, beta: float):
        super().__init__()
        i = torch.arange(channels)
        band = ((i[:, None] - i[None, :]).abs() <= depth_radius).float().view(channels, channels, 1, 1)
        self.register_buffer("band", band, persistent=False)
        self.bias, self.alpha, self.beta = bias, alpha, beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / (self.bias + self.alpha * F.conv2d(x * x, self.band)).pow(self.beta)
