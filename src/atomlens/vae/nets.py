"""The networks of the VAEs (torch only; the Pyro model and guide live in
:mod:`atomlens.vae.model`).

The invariant decoders are coordinate networks: they map a canonical coordinate ``u`` and
the content latents to the value at ``u``, so rotating, shifting or scaling the grid they are
evaluated on rotates, shifts or scales the drawn sample exactly (a spatial transformer on a
coordinate grid, as in Bepler et al. 2019 and the rVAE of Kalinin, Ziatdinov et al.).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CoordDecoder", "Encoder", "MLPDecoder", "transform_grid"]


def _mlp(n_in: int, hidden: int, n_out: int, layers: int = 2) -> nn.Sequential:
    mods: list[nn.Module] = []
    n = n_in
    for _ in range(layers):
        mods += [nn.Linear(n, hidden), nn.Tanh()]
        n = hidden
    mods.append(nn.Linear(n, n_out))
    return nn.Sequential(*mods)


class Encoder(nn.Module):
    """Sample (flattened) and optional condition → Gaussian ``(loc, scale)`` of ``n_latent``
    latents and, with ``n_classes``, class logits."""

    def __init__(
        self, n_in: int, n_latent: int, *, hidden: int, n_cond: int = 0, n_classes: int = 0
    ) -> None:
        super().__init__()
        self.n_latent = n_latent
        self.n_classes = n_classes
        self.body = _mlp(n_in + n_cond, hidden, 2 * n_latent + n_classes)

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        h = x if cond is None else torch.cat([x, cond], dim=-1)
        out = self.body(h)
        k = self.n_latent
        loc = out[..., :k]
        scale = nn.functional.softplus(out[..., k : 2 * k]) + 1e-4
        logits = out[..., 2 * k :] if self.n_classes else None
        return loc, scale, logits


class MLPDecoder(nn.Module):
    """Latents (and condition) → the flattened sample."""

    def __init__(self, n_latent: int, n_out: int, *, hidden: int) -> None:
        super().__init__()
        self.body = _mlp(n_latent, hidden, n_out)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)


class CoordDecoder(nn.Module):
    """Canonical coordinates ``(B, P, d)`` and latents ``(..., B, K)`` → values ``(..., B, P)``.

    The coordinates and the latents are embedded separately and added, then passed through
    an MLP applied at every grid point.
    """

    def __init__(self, n_coord: int, n_latent: int, *, hidden: int) -> None:
        super().__init__()
        self.coord = nn.Linear(n_coord, hidden)
        self.latent = nn.Linear(n_latent, hidden, bias=False) if n_latent else None
        self.body = nn.Sequential(
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, 1),
        )

    def forward(self, coords: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        h = self.coord(coords)  # (B, P, H)
        if self.latent is not None and z is not None:
            h = h + self.latent(z).unsqueeze(-2)  # (..., B, 1, H)
        return self.body(h).squeeze(-1)


def transform_grid(
    grid: torch.Tensor,
    *,
    angle: torch.Tensor | None = None,
    shift: torch.Tensor | None = None,
    log_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Canonical coordinates ``u = R(−θ)(r − d) / s`` of every grid point, per sample.

    Parameters
    ----------
    grid : tensor of shape (P, d)
        Grid points ``r`` (``d = 2``: (x, y) = (column, row); ``d = 1``: energy channel) [px].
    angle : tensor of shape (B,), optional
        Rotation θ [rad], from x towards y (clockwise as displayed, rows pointing down).
    shift : tensor of shape (B, d), optional
        Translation ``d`` [px].
    log_scale : tensor of shape (B,), optional
        ``log s``.

    Returns
    -------
    tensor of shape (B, P, d)
        [px]: a sample drawn at ``u`` by the decoder appears rotated by θ, shifted by ``d``
        and scaled by ``s``.
    """
    batch = next(t.shape[0] for t in (angle, shift, log_scale) if t is not None)
    r = grid.unsqueeze(0).expand(batch, *grid.shape)
    if shift is not None:
        r = r - shift.unsqueeze(1)
    if angle is not None:
        c, s = torch.cos(angle)[:, None], torch.sin(angle)[:, None]
        x, y = r[..., 0], r[..., 1]
        r = torch.stack([c * x + s * y, -s * x + c * y], dim=-1)
    if log_scale is not None:
        r = r * torch.exp(-log_scale)[:, None, None]
    return r
