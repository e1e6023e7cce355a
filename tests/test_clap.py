"""CLAP filter: equality with a direct per-window computation and known-answer properties."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import convolve2d

from stamps_python.numerics.clap import clap_filt, clap_filt_patch, clap_low_pass, gausswin
from stamps_python.utils import StampsError


def _gauss7() -> np.ndarray:
    k = np.arange(-3, 4)
    return np.exp(-0.5 * (2.5 * k / 3.0) ** 2)


def _direct_response(
    block: np.ndarray, alpha: float, beta: float, low_pass: np.ndarray
) -> np.ndarray:
    """Filter one zero-padded window in the frequency domain, written out step by step."""
    spec = np.fft.fft2(block)
    mag = np.abs(spec)
    kernel = np.outer(_gauss7(), _gauss7())
    smooth = np.fft.ifftshift(convolve2d(np.fft.fftshift(mag), kernel, mode="same"))
    med = np.median(smooth)
    if med != 0:
        smooth = smooth / med
    resp = np.clip(smooth**alpha - 1, 0, None) * beta + low_pass
    return np.fft.ifft2(spec * resp)


def _direct_clap_filt(ph, alpha, beta, n_win, n_pad, low_pass):
    """Plain loop over the windows with 1-based bookkeeping as in the StaMPS description."""
    n_i, n_j = ph.shape
    out = np.zeros((n_i, n_j), dtype=complex)
    n_inc = n_win // 4
    wf0 = np.zeros((n_win, n_win))
    for r in range(n_win):
        for c in range(n_win):
            wf0[r, c] = min(r, n_win - 1 - r) + min(c, n_win - 1 - c) + 1e-6
    for ix1 in range(1, int(np.ceil(n_i / n_inc)) - 3 + 1):
        i1 = (ix1 - 1) * n_inc + 1
        i2 = i1 + n_win - 1
        wf = wf0.copy()
        if i2 > n_i:
            sh = i2 - n_i
            i2, i1 = n_i, n_i - n_win + 1
            wf = np.vstack([np.zeros((sh, n_win)), wf[: n_win - sh]])
        for ix2 in range(1, int(np.ceil(n_j / n_inc)) - 3 + 1):
            j1 = (ix2 - 1) * n_inc + 1
            j2 = j1 + n_win - 1
            wf2 = wf.copy()
            if j2 > n_j:
                sh = j2 - n_j
                j2, j1 = n_j, n_j - n_win + 1
                wf2 = np.hstack([np.zeros((n_win, sh)), wf2[:, : n_win - sh]])
            block = np.zeros((n_win + n_pad, n_win + n_pad), dtype=complex)
            block[:n_win, :n_win] = ph[i1 - 1 : i2, j1 - 1 : j2]
            filt = _direct_response(block, alpha, beta, low_pass)[:n_win, :n_win] * wf2
            out[i1 - 1 : i2, j1 - 1 : j2] += filt
    return out


def test_gausswin_matches_matlab_values():
    expected = [
        0.0439369336,
        0.2493522087,
        0.7066482778,
        1.0,
        0.7066482778,
        0.2493522087,
        0.0439369336,
    ]
    np.testing.assert_allclose(gausswin(7), expected, rtol=1e-9)


def test_low_pass_known_values():
    lp = clap_low_pass(32, 50.0, 800.0)
    assert lp.shape == (32, 32)
    # zero frequency at [0, 0]; frequency index 2 is 2 / (32 * 50 m) = 1/800 m^-1 = the cut-off
    assert lp[0, 0] == pytest.approx(1.0)
    assert lp[0, 2] == pytest.approx(0.5)
    assert lp[2, 2] == pytest.approx(0.25)
    assert lp[0, -2] == pytest.approx(0.5)
    f = 16 / (32 * 50.0)
    assert lp[0, 16] == pytest.approx(1 / (1 + (f * 800) ** 10))
    np.testing.assert_allclose(lp, lp.T)


@pytest.mark.parametrize("shape", [(24, 24), (37, 53), (50, 31)])
def test_clap_filt_equals_direct_window_loop(shape):
    rng = np.random.default_rng(1)
    ph = np.exp(1j * rng.uniform(-np.pi, np.pi, shape)) * rng.uniform(0, 2, shape)
    ph[rng.random(shape) < 0.2] = 0
    low_pass = clap_low_pass(32, 50.0, 800.0)
    got = clap_filt(ph, 1.0, 0.3, 24, 8, low_pass)
    want = _direct_clap_filt(ph, 1.0, 0.3, 24, 8, low_pass)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * np.abs(want).max())


def test_clap_filt_alpha_half_no_lowpass_and_nan():
    rng = np.random.default_rng(2)
    ph = rng.normal(size=(40, 40)) + 1j * rng.normal(size=(40, 40))
    ph[3, 5] = np.nan
    got = clap_filt(ph, 0.5, 0.1, 32, 0, None)
    clean = ph.copy()
    clean[3, 5] = 0
    want = _direct_clap_filt(clean, 0.5, 0.1, 32, 0, np.zeros((32, 32)))
    np.testing.assert_allclose(got, want, atol=1e-10 * np.abs(want).max())


def test_clap_filt_stack_equals_per_layer():
    rng = np.random.default_rng(3)
    stack = np.exp(1j * rng.uniform(-np.pi, np.pi, (3, 30, 45)))
    low_pass = clap_low_pass(32, 50.0, 800.0)
    got = clap_filt(stack, 1.0, 0.3, 24, 8, low_pass)
    for k in range(3):
        np.testing.assert_allclose(
            got[k], clap_filt(stack[k], 1.0, 0.3, 24, 8, low_pass), atol=1e-12
        )


def test_clap_filt_keeps_smooth_phase_and_reduces_noise():
    rng = np.random.default_rng(4)
    ii, jj = np.mgrid[0:60, 0:60]
    signal = 0.08 * ii + 0.05 * jj
    noisy = np.exp(1j * (signal + rng.normal(0, 0.8, signal.shape)))
    out = clap_filt(noisy, 1.0, 0.3, 24, 8, clap_low_pass(32, 50.0, 800.0))
    inner = (slice(6, -6), slice(6, -6))
    err_out = np.angle(out[inner] * np.exp(-1j * signal[inner]))
    err_in = np.angle(noisy[inner] * np.exp(-1j * signal[inner]))
    assert np.std(err_out) < 0.3 < 0.7 < np.std(err_in)


def test_clap_filt_small_grid_is_zero_padded():
    rng = np.random.default_rng(5)
    ph = np.exp(1j * rng.uniform(-np.pi, np.pi, (10, 40)))
    low_pass = clap_low_pass(32, 50.0, 800.0)
    padded = np.zeros((24, 40), dtype=complex)
    padded[:10] = ph
    np.testing.assert_allclose(
        clap_filt(ph, 1.0, 0.3, 24, 8, low_pass),
        _direct_clap_filt(padded, 1.0, 0.3, 24, 8, low_pass)[:10],
    )


def test_clap_filt_rejects_odd_window():
    with pytest.raises(StampsError):
        clap_filt(np.ones((40, 40)), n_win=22.5)


def test_clap_filt_patch_equals_direct():
    rng = np.random.default_rng(6)
    ph = np.exp(1j * rng.uniform(-np.pi, np.pi, (5, 32, 32)))
    low_pass = clap_low_pass(32, 50.0, 800.0)
    got = clap_filt_patch(ph, 1.0, 0.3, low_pass)
    for k in range(5):
        np.testing.assert_allclose(got[k], _direct_response(ph[k], 1.0, 0.3, low_pass), atol=1e-12)
    # no low-pass term: a flat grid has one spectral peak, kept with gain beta*(H/median-1)
    flat = clap_filt_patch(np.ones((32, 32)), 1.0, 0.3)
    assert np.ptp(flat.real) < 1e-9 and abs(flat.imag).max() < 1e-9 and flat[0, 0].real > 0
