"""MATLAB-compatible elementary functions the port needs bit-for-bit: ``round``, ``interp`` and
phase wrapping as ``angle(exp(1i*x))``."""

from __future__ import annotations

import numpy as np
from scipy.linalg import hankel, toeplitz
from scipy.signal import lfilter


def matlab_round(x: float) -> int:
    """MATLAB ``round`` of a scalar (halves away from zero)."""
    return int(np.sign(x) * np.floor(abs(x) + 0.5))


def matlab_round_array(x: np.ndarray) -> np.ndarray:
    """MATLAB ``round``: halves away from zero."""
    return np.trunc(x + np.copysign(0.5, x))


def wrap(x: np.ndarray) -> np.ndarray:
    """Phase wrapped to (-pi, pi], as ``angle(exp(1i*x))``."""
    return np.angle(np.exp(1j * x))


def wrap_rint(phase: np.ndarray) -> np.ndarray:
    """Wrap phase (radians) to [-pi, pi]: :func:`wrap` up to rounding at +-pi (faster; float in,
    same dtype out). Used by ps_weed."""
    turns = phase * (0.5 / np.pi)
    np.rint(turns, out=turns)
    turns *= 2.0 * np.pi
    return np.subtract(phase, turns, out=turns)


def matlab_interp(x: np.ndarray, r: int, n: int = 4, cutoff: float = 0.5) -> np.ndarray:
    """MATLAB ``interp(x, r, n, cutoff)``: band-limited up-sampling of a 1-D series by ``r``.

    A symmetric FIR filter of 2 n r + 1 taps, designed so the original samples pass unchanged
    and the mean-square interpolation error of a signal band-limited to ``cutoff`` is minimal,
    is run over the zero-stuffed series; both ends are started on a point-reflected copy of the
    data. Returns r * len(x) samples (float64).
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    nn = len(x)
    if 2 * n + 1 > nn:
        raise ValueError(f"matlab_interp needs at least {2 * n + 1} samples, got {nn}")
    eps = np.finfo(np.float64).eps

    def sinc(v: np.ndarray) -> np.ndarray:
        return np.sin(cutoff * np.pi * v) / (cutoff * np.pi * v)

    near = toeplitz(np.arange(n, dtype=np.float64)) + eps
    far = hankel(np.arange(2 * n - 1, n - 1, -1, dtype=np.float64))
    far = far + eps + hankel(np.r_[np.arange(1, n, dtype=np.float64), 0.0])[::-1, ::-1]
    a_plus = np.linalg.inv(sinc(near) + sinc(far))
    a_minus = np.linalg.inv(sinc(near) - sinc(far))
    d = np.zeros((2 * n, n))
    d[0::2] = a_plus + a_minus
    d[1::2] = a_plus - a_minus
    frac = np.arange(r, dtype=np.float64) / r
    dist = np.zeros(2 * n)
    dist[0::2] = np.arange(n, 0, -1)
    dist[1::2] = np.arange(n - 1, -1, -1)
    sign = np.ones(2 * n)
    sign[0::2] = -1.0
    taps = 0.5 * d.T @ sinc(eps + dist[:, None] + sign[:, None] * frac[None, :])
    b = np.zeros(2 * n * r + 1)
    b[: n * r] = taps.ravel()
    b[n * r] = 0.5 * d[:, n - 1] @ sinc(sign + dist + eps)
    b[n * r + 1 :] = b[n * r - 1 :: -1]

    out = np.zeros(r * nn)
    out[::r] = x
    head = np.zeros(2 * n * r)
    head[::r] = 2 * x[0] - x[2 * n : 0 : -1]
    _, state = lfilter(b, 1.0, head, zi=np.zeros(len(b) - 1))
    out, state = lfilter(b, 1.0, out, zi=state)
    out[: (nn - n) * r] = out[n * r : nn * r]
    tail = np.zeros(2 * n * r)
    tail[::r] = 2 * x[-1] - x[nn - 2 :: -1][: 2 * n]
    tail, _ = lfilter(b, 1.0, tail, zi=state)
    out[nn * r - n * r :] = tail[: n * r]
    return out
