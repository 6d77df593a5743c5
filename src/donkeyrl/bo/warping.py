"""Output transform: standardise, optionally Yeo-Johnson warp, standardise again.

RL rewards are skewed (many failing trials near the bottom, a few good ones far above), which a
stationary GP models badly. Following HEBO, the targets can be power-transformed towards
normality before the GP sees them. Everything the optimizer reports (means, bounds, gaps) is
mapped back to reward units with ``inverse``.

Notation: y raw rewards (n,); s = (y - mu) / sd; w = YJ_lam(s); z = (w - mu_w) / sd_w.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["OutputTransform", "fit_output_transform", "yeo_johnson", "yeo_johnson_inverse"]

log = logging.getLogger(__name__)

LAMBDA_RANGE = (0.2, 2.0)
"""Clip range of the fitted Yeo-Johnson exponent: 1 is the identity; the clip keeps the map
from flattening the top of the reward range (where the optimiser must discriminate) too much."""


def yeo_johnson(s: np.ndarray, lam: float) -> np.ndarray:
    """Yeo-Johnson power transform of ``s`` with exponent ``lam``."""
    s = np.asarray(s, dtype=float)
    out = np.empty_like(s)
    pos = s >= 0
    if abs(lam) < 1e-12:
        out[pos] = np.log1p(s[pos])
    else:
        out[pos] = ((s[pos] + 1.0) ** lam - 1.0) / lam
    if abs(lam - 2.0) < 1e-12:
        out[~pos] = -np.log1p(-s[~pos])
    else:
        out[~pos] = -((1.0 - s[~pos]) ** (2.0 - lam) - 1.0) / (2.0 - lam)
    return out


def yeo_johnson_inverse(w: np.ndarray, lam: float) -> np.ndarray:
    """Inverse of ``yeo_johnson``; arguments outside the image are clipped to its boundary."""
    w = np.asarray(w, dtype=float)
    out = np.empty_like(w)
    pos = w >= 0
    if abs(lam) < 1e-12:
        out[pos] = np.expm1(w[pos])
    else:
        base = np.maximum(w[pos] * lam + 1.0, 1e-12)
        out[pos] = base ** (1.0 / lam) - 1.0
    if abs(lam - 2.0) < 1e-12:
        out[~pos] = -np.expm1(-w[~pos])
    else:
        base = np.maximum(1.0 - (2.0 - lam) * w[~pos], 1e-12)
        out[~pos] = 1.0 - base ** (1.0 / (2.0 - lam))
    return out


def _yj_slope(s: np.ndarray, lam: float) -> np.ndarray:
    """d YJ / d s, used to carry known noise through the warp (delta method)."""
    s = np.asarray(s, dtype=float)
    return np.where(s >= 0, (np.abs(s) + 1.0) ** (lam - 1.0), (np.abs(s) + 1.0) ** (1.0 - lam))


@dataclass(frozen=True)
class OutputTransform:
    """A fitted y -> z map and its inverse."""

    mu: float
    """Mean of the raw targets."""
    sd: float
    """Standard deviation of the raw targets (1 if they are all equal)."""
    lam: float
    """Yeo-Johnson exponent (1 = no warping)."""
    mu_w: float
    """Mean of the warped targets."""
    sd_w: float
    """Standard deviation of the warped targets."""

    def forward(self, y: np.ndarray) -> np.ndarray:
        """Raw rewards -> model units."""
        s = (np.asarray(y, dtype=float) - self.mu) / self.sd
        w = s if self.lam == 1.0 else yeo_johnson(s, self.lam)
        return (w - self.mu_w) / self.sd_w

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Model units -> raw rewards."""
        w = np.asarray(z, dtype=float) * self.sd_w + self.mu_w
        s = w if self.lam == 1.0 else yeo_johnson_inverse(w, self.lam)
        return s * self.sd + self.mu

    def noise_forward(self, y: np.ndarray, noise_sd: np.ndarray) -> np.ndarray:
        """Known raw noise standard deviations at ``y`` -> noise variances in model units."""
        s = (np.asarray(y, dtype=float) - self.mu) / self.sd
        slope = 1.0 if self.lam == 1.0 else _yj_slope(s, self.lam)
        return (np.asarray(noise_sd, dtype=float) / self.sd * slope / self.sd_w) ** 2

    def std_inverse(self, z: np.ndarray | float, std_z: np.ndarray | float) -> np.ndarray:
        """Approximate raw standard deviation of a model-unit N(z, std_z^2): half the mapped
        width of the one-sigma band (exact without warping)."""
        z, std_z = np.asarray(z, dtype=float), np.asarray(std_z, dtype=float)
        return 0.5 * (self.inverse(z + std_z) - self.inverse(z - std_z))


def _fit_lambda(s: np.ndarray) -> float:
    """Maximum-likelihood exponent on a 0.05 grid over LAMBDA_RANGE (cheap and robust).

    Profile log-likelihood of a normal model of YJ_lam(s) (Yeo and Johnson, 2000):
    -n/2 log var(YJ_lam(s)) + (lam - 1) sum sign(s) log(1 + |s|), for all grid values at once.
    """
    lam = np.arange(LAMBDA_RANGE[0], LAMBDA_RANGE[1] + 1e-9, 0.05)[:, None]  # (g, 1)
    a = np.log1p(np.abs(s))[None, :]  # (1, n)
    pos = s[None, :] >= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        w_pos = np.where(np.abs(lam) < 1e-12, a, np.expm1(lam * a) / lam)
        two = 2.0 - lam
        w_neg = np.where(np.abs(two) < 1e-12, -a, -np.expm1(two * a) / two)
    w = np.where(pos, w_pos, w_neg)
    var = w.var(axis=1)
    ll = -0.5 * len(s) * np.log(np.maximum(var, 1e-300)) + (lam[:, 0] - 1.0) * float(
        np.sum(np.sign(s) * a[0]))
    ll[~(var > 0)] = -np.inf
    return round(float(lam[int(np.argmax(ll)), 0]), 2) if np.isfinite(ll.max()) else 1.0


def fit_output_transform(y: np.ndarray, warp: bool = True) -> OutputTransform:
    """Fit the transform to raw targets ``y`` (finite values only).

    All-equal targets give sd = 1 (the model is flat) with a warning; the warp is skipped for
    fewer than 4 distinct values, where a power transform cannot be estimated.
    """
    y = np.asarray(y, dtype=float)
    mu = float(np.mean(y)) if len(y) else 0.0
    sd = float(np.std(y)) if len(y) else 1.0
    if not sd > 1e-12 * max(1.0, abs(mu)):
        if len(y) > 1:
            log.warning("all %d observed values are equal (%.6g): the model is flat and "
                        "proposals follow uncertainty only", len(y), mu)
        sd = 1.0
    s = (y - mu) / sd
    lam = 1.0
    if warp and len(np.unique(y)) >= 4:
        lam = _fit_lambda(s)
    w = s if lam == 1.0 else yeo_johnson(s, lam)
    mu_w = float(np.mean(w)) if len(w) else 0.0
    sd_w = float(np.std(w)) if len(w) else 1.0
    if not sd_w > 1e-12:
        sd_w = 1.0
    return OutputTransform(mu=mu, sd=sd, lam=lam, mu_w=mu_w, sd_w=sd_w)
