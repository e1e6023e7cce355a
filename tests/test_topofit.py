"""ps_topofit: per-pixel reference equality and recovery of an injected look-angle error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stamps_python.numerics.topofit import ps_topofit


def _reference_topofit(cpx: np.ndarray, bperp: np.ndarray, n_trial_wraps: float, asym: float = 0.0):
    """One pixel, written directly: drop nulls, grid search over trials, then 1-parameter lstsq."""
    keep = cpx != 0
    cpx = cpx[keep]
    bp = bperp[keep]
    bp_range = bp.max() - bp.min()
    n = math.ceil(8 * n_trial_wraps)
    trials = np.arange(-n, n + 1) + asym * 8 * n_trial_wraps
    coh_trial = [
        abs(np.sum(cpx * np.exp(-1j * bp / bp_range * np.pi / 4 * m))) / np.sum(abs(cpx))
        for m in trials
    ]
    k0 = np.pi / 4 / bp_range * trials[int(np.argmax(coh_trial))]
    res = cpx * np.exp(-1j * k0 * bp)
    res = np.angle(res * np.conj(res.sum()))
    w = abs(cpx)
    slope = np.linalg.lstsq((w * bp)[:, None], w * res, rcond=None)[0][0]
    k0 += slope
    resid = cpx * np.exp(-1j * k0 * bp)
    full = np.zeros(len(keep), dtype=complex)
    full[keep] = resid
    return k0, np.angle(resid.sum()), abs(resid.sum()) / np.sum(abs(resid)), full


def _synthetic(n_ps: int, n_ifg: int, noise: float, seed: int):
    rng = np.random.default_rng(seed)
    bperp = rng.uniform(-150, 150, n_ifg)
    bperp_mat = bperp[None, :] + rng.normal(0, 3, (n_ps, n_ifg))
    k_true = rng.uniform(-0.01, 0.01, n_ps)
    c_true = rng.uniform(-np.pi, np.pi, n_ps)
    phase = k_true[:, None] * bperp_mat + c_true[:, None] + rng.normal(0, noise, (n_ps, n_ifg))
    return np.exp(1j * phase), bperp_mat, k_true, c_true


def test_equals_per_pixel_reference_with_nulls_and_amplitudes():
    rng = np.random.default_rng(11)
    cpx, bperp_mat, _, _ = _synthetic(300, 25, 0.6, 11)
    cpx = cpx * rng.uniform(0.5, 2.0, cpx.shape)
    cpx[rng.random(cpx.shape) < 0.05] = 0
    cpx[:100] = np.exp(1j * rng.uniform(0, 2 * np.pi, (100, 25)))  # random-phase pixels
    k, c, coh, res = ps_topofit(cpx, bperp_mat, 0.6, chunk_size=64)
    for i in range(len(cpx)):
        rk, rc, rcoh, rres = _reference_topofit(cpx[i], bperp_mat[i], 0.6)
        assert k[i] == pytest.approx(rk, rel=1e-9, abs=1e-13)
        assert np.angle(np.exp(1j * (c[i] - rc))) == pytest.approx(0, abs=1e-9)
        assert coh[i] == pytest.approx(rcoh, rel=1e-10)
        np.testing.assert_allclose(res[i], rres, atol=1e-10)


def test_shared_bperp_vector_and_asym():
    cpx, bperp_mat, _, _ = _synthetic(50, 20, 0.3, 12)
    bperp = bperp_mat[0]
    k, _, coh, _ = ps_topofit(cpx, bperp, 1.3, asym=0.5)
    for i in range(50):
        rk, _, rcoh, _ = _reference_topofit(cpx[i], bperp, 1.3, asym=0.5)
        assert k[i] == pytest.approx(rk, rel=1e-9, abs=1e-13)
        assert coh[i] == pytest.approx(rcoh, rel=1e-10)


def test_recovers_injected_k_and_coherence():
    noise = 0.3
    cpx, bperp_mat, k_true, c_true = _synthetic(2000, 30, noise, 13)
    # max |K| = 0.01 rad/m over a ~300 m baseline range -> about 0.5 wraps; search 0.6
    k, c, coh, res = ps_topofit(cpx, bperp_mat, 0.6)
    assert np.median(np.abs(k - k_true)) < 1.5e-3 * noise
    assert np.percentile(np.abs(k - k_true), 99) < 2e-3
    assert np.median(np.abs(np.angle(np.exp(1j * (c - c_true))))) < 0.1
    # coherence of a series with Gaussian phase noise sigma: |E exp(j n)| = exp(-sigma^2 / 2)
    assert np.median(coh) == pytest.approx(math.exp(-(noise**2) / 2), abs=0.02)
    assert np.std(np.angle(res * np.exp(-1j * c[:, None]))) == pytest.approx(noise, rel=0.1)


def test_random_phase_gives_low_coherence():
    rng = np.random.default_rng(14)
    cpx = np.exp(1j * rng.uniform(0, 2 * np.pi, (5000, 30)))
    _, _, coh, _ = ps_topofit(cpx, rng.uniform(-150, 150, 30), 0.6)
    assert np.median(coh) < 0.35
    assert np.mean(coh > 0.6) < 0.01
