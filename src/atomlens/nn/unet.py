"""A configurable U-Net for per-pixel atom segmentation (architecture only, no training)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from atomlens._shared.config import ConfigDict

__all__ = ["UNet", "UNetConfig"]

Norm = Literal["group", "batch", "none"]


@dataclass(frozen=True)
class UNetConfig(ConfigDict):
    """Architecture of a :class:`UNet`.

    Parameters
    ----------
    in_channels : int
        Image channels (1 for HAADF; 2 for a HAADF + ABF pair).
    n_classes : int
        Foreground classes K; the network outputs K + 1 channels, background first.
    depth : int
        Number of 2× down-samplings (the input side must be a multiple of ``2**depth``;
        :func:`atomlens.inference.predict_tiled` pads for you).
    width : int
        Channels of the first level; each level doubles them (ignored when ``widths`` is
        given).
    widths : tuple of int, optional
        Channels of each level instead (``depth + 1`` numbers, the first level's first,
        the bottleneck's last), e.g. ``(8, 32, 64, 128)``. On a CPU, halving the
        full-resolution level's channels of the default (16 → 8, the rest kept) cut a 512²
        px pass by 23 % (one thread, 2026-12-06).
    norm : {"group", "batch", "none"}
        Normalisation after each convolution. Group normalisation (the default) works the
        same in training and inference, for any batch size, and under ``torch.func.vmap``.
    dropout : float
        Dropout probability before the bottleneck's second convolution and in the decoder.
    """

    in_channels: int = 1
    n_classes: int = 1
    depth: int = 3
    width: int = 16
    norm: Norm = "group"
    dropout: float = 0.0
    widths: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.widths is not None and isinstance(self.depth, int):
            if isinstance(self.widths, list | tuple):
                object.__setattr__(self, "widths", tuple(self.widths))  # JSON gives a list
            ok = isinstance(self.widths, tuple) and all(
                isinstance(w, int) and 2 <= w <= 512 for w in self.widths
            )
            if not ok or len(self.widths) != self.depth + 1:
                problems.append(
                    f"widths must be depth + 1 = {self.depth + 1} ints within 2–512, got "
                    f"{self.widths!r}"
                )
        if not (isinstance(self.in_channels, int) and 1 <= self.in_channels <= 16):
            problems.append(f"in_channels must be an int within 1–16, got {self.in_channels!r}")
        if not (isinstance(self.n_classes, int) and 1 <= self.n_classes <= 64):
            problems.append(f"n_classes must be an int within 1–64, got {self.n_classes!r}")
        if not (isinstance(self.depth, int) and 1 <= self.depth <= 6):
            problems.append(f"depth must be an int within 1–6, got {self.depth!r}")
        if not (isinstance(self.width, int) and 2 <= self.width <= 256):
            problems.append(f"width must be an int within 2–256, got {self.width!r}")
        if self.norm not in ("group", "batch", "none"):
            problems.append(f"norm must be 'group', 'batch' or 'none', got {self.norm!r}")
        if not (0.0 <= float(self.dropout) < 1.0):
            problems.append(f"dropout must be within [0, 1), got {self.dropout!r}")
        if problems:
            raise ValueError("invalid UNetConfig: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict:
        """JSON-ready dictionary; ``widths`` only when set, so that models which do not use
        it stay readable by versions that do not know it."""
        d = super().to_dict()
        if d["widths"] is None:
            del d["widths"]
        else:
            d["widths"] = list(d["widths"])
        return d

    def level_widths(self) -> tuple[int, ...]:
        """Channels of each level.

        Returns
        -------
        tuple of int
            ``depth + 1`` channel counts, the first (full-resolution) level's first and
            the bottleneck's last: :attr:`widths` if set, else ``width · 2**level``.
        """
        if self.widths is not None:
            return self.widths
        return tuple(self.width * 2**i for i in range(self.depth + 1))

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this [px]."""
        return 2**self.depth

    def receptive_field_px(self) -> int:
        """Receptive field of one output pixel [px, at the model's sampling].

        Each level has two 3×3 convolutions; a level at down-sampling ``2**l`` widens the
        field by ``2 · 2 · 2**l`` px on the way down and again on the way up.
        """
        rf = 1
        for level in range(self.depth):
            rf += 4 * 2**level  # encoder convs
            rf += 2**level  # the 2×2 max-pool
        rf += 4 * 2**self.depth  # bottleneck
        for level in range(self.depth - 1, -1, -1):
            rf += 4 * 2**level  # decoder convs
        return rf


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        groups = max(1, min(8, channels // 4))
        while channels % groups:
            groups -= 1
        return nn.GroupNorm(groups, channels)
    return nn.Identity()


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: Norm, dropout: float = 0.0) -> None:
        bias = norm == "none"
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, 3, padding=1, bias=bias),
            _norm(norm, cout),
            nn.SiLU(inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        layers += [
            nn.Conv2d(cout, cout, 3, padding=1, bias=bias),
            _norm(norm, cout),
            nn.SiLU(inplace=True),
        ]
        super().__init__(*layers)


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015) returning per-pixel class logits.

    The default (``width=16, depth=3``, 0.48 M parameters) has a receptive field of 96 px
    (:meth:`UNetConfig.receptive_field_px`). atomlens trains it at a sampling of about
    0.2 Å/px (the model directory records the exact value; images are resampled to it),
    where that field spans about 19 Å, i.e. 7–13 inter-column distances of common 2D
    materials and perovskites: enough context to tell a column from a noise blob at low
    dose, small enough to train on a CPU in minutes.

    Parameters
    ----------
    config : UNetConfig
        The architecture.

    Notes
    -----
    Input ``(B, C, H, W)`` with ``H`` and ``W`` multiples of ``2**depth``; output
    ``(B, K + 1, H, W)`` logits, background channel first. Apply ``softmax(dim=1)`` for
    probabilities.

    References
    ----------
    .. [1] O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for
       Biomedical Image Segmentation", MICCAI 2015, arXiv:1505.04597.

    Examples
    --------
    >>> import torch
    >>> net = UNet(UNetConfig(n_classes=2, width=8, depth=2))
    >>> net(torch.zeros(1, 1, 32, 32)).shape
    torch.Size([1, 3, 32, 32])
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else UNetConfig()
        c = self.config
        widths = c.level_widths()
        self.down = nn.ModuleList()
        cin = c.in_channels
        for w in widths[:-1]:
            self.down.append(_DoubleConv(cin, w, c.norm))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _DoubleConv(widths[-2], widths[-1], c.norm, c.dropout)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for i in range(c.depth - 1, -1, -1):
            self.up.append(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2))
            self.merge.append(_DoubleConv(2 * widths[i], widths[i], c.norm, c.dropout))
        self.head = nn.Conv2d(widths[0], c.n_classes + 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K + 1, H, W)`` for images ``(B, C, H, W)``."""
        m = self.config.multiple
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"expected input of shape (B, {self.config.in_channels}, H, W), "
                f"got {tuple(x.shape)}."
            )
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(
                f"H and W must be multiples of {m} for depth {self.config.depth}, got "
                f"{tuple(x.shape[-2:])}; pad the input (predict_tiled does this)."
            )
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def for_inference(self) -> nn.Module:
        """A copy that computes the same logits faster on a CPU, for inference only.

        Its tensors are channels-last (oneDNN's convolutions ran 1.9× faster on them), and
        each decoder level's first convolution is split in two, one for the up-sampled
        path and one for the skip connection, whose outputs are summed: the same
        arithmetic without the concatenated tensor (at full resolution the concatenation
        and its convolution took 1.5× as long as the two convolutions). Batch norms are
        folded into the convolutions before them (their running statistics are constants at
        inference), so a ``norm="batch"`` network costs what ``norm="none"`` does. Outputs
        agree with :meth:`forward` in eval mode to float rounding (≈ 1e-4 in the logits).

        Returns
        -------
        torch.nn.Module
            Maps ``(B, C, H, W)`` images to ``(B, K + 1, H, W)`` logits, in eval mode; the
            weights are copies (later changes to this network do not reach it).
        """
        return _InferenceUNet(self).eval()


class _SplitConv(nn.Module):
    """``conv(cat([a, b], dim=1))`` as ``conv_a(a) + conv_b(b)``."""

    def __init__(self, conv: nn.Conv2d, n_first: int) -> None:
        super().__init__()
        w = conv.weight.detach()
        self.wa = nn.Parameter(w[:, :n_first].contiguous(memory_format=torch.channels_last))
        self.wb = nn.Parameter(w[:, n_first:].contiguous(memory_format=torch.channels_last))
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone())
        self.padding = conv.padding

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(a, self.wa, self.bias, padding=self.padding)
        return out.add_(F.conv2d(b, self.wb, None, padding=self.padding))


def _fold_batch_norms(block: nn.Sequential) -> None:
    """Fold every ``BatchNorm2d`` of ``block`` (eval-mode statistics) into the convolution
    just before it, in place; the norm becomes an ``Identity``."""
    layers = list(block)
    for i in range(1, len(layers)):
        conv, bn = layers[i - 1], layers[i]
        if not (isinstance(bn, nn.BatchNorm2d) and isinstance(conv, nn.Conv2d)):
            continue
        with torch.no_grad():
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            new_bias = (bias - bn.running_mean) * scale + bn.bias
            conv.weight.mul_(scale[:, None, None, None])
            conv.bias = nn.Parameter(new_bias)
        block[i] = nn.Identity()


class _InferenceUNet(nn.Module):
    """:meth:`UNet.for_inference`: channels-last, batch norms folded, the decoder's
    concatenations split."""

    def __init__(self, net: UNet) -> None:
        super().__init__()
        src = copy.deepcopy(net).eval()
        for block in [*src.down, src.bottleneck, *src.merge]:
            _fold_batch_norms(block)
        src = src.to(memory_format=torch.channels_last)
        self.config = src.config
        self.down, self.pool, self.bottleneck, self.up = src.down, src.pool, src.bottleneck, src.up
        self.head = src.head
        self.first = nn.ModuleList()
        self.rest = nn.ModuleList()
        for up, merge in zip(src.up, src.merge, strict=True):
            self.first.append(_SplitConv(merge[0], up.out_channels))
            self.rest.append(nn.Sequential(*list(merge)[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, first, rest, skip in zip(
            self.up, self.first, self.rest, reversed(skips), strict=True
        ):
            x = rest(first(up(x), skip))
        return self.head(x)
