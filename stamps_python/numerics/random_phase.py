"""Coherence distribution of simulated random-phase pixels (StaMPS ps_est_gamma_quick).

StaMPS fits the look-angle-error model to ``n_rand`` = 300 000 pixels of uniformly random phase
and histograms their temporal coherence into 100 bins of width 0.01. Steps 2 and 3 compare the
candidates' coherence histogram with this one to estimate the fraction of random pixels.

StaMPS seeds MATLAB's generator with ``rand('state', 2005)``; here numpy's
``default_rng(2005)`` draws the phases, so individual draws differ but the distribution is the
same and reruns are bit-identical.
"""

from __future__ import annotations

import numpy as np

from stamps_python.numerics.topofit import ps_topofit

N_RAND = 300_000
RANDOM_SEED = 2005
COH_BINS = (np.arange(100, dtype=np.float64) + 0.5) / 100.0


def hist_centres(values: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in bins centred on ``centres`` (MATLAB ``hist(values, centres)``).

    Bin edges are the midpoints between centres; the first and last bins are open-ended, each
    bin includes its lower edge. NaN values are not counted. Returns float64 counts.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[~np.isnan(values)]
    centres = np.asarray(centres, dtype=np.float64)
    edges = (centres[1:] + centres[:-1]) / 2.0
    index = np.searchsorted(edges, values, side="right")
    return np.bincount(index, minlength=len(centres)).astype(np.float64)


def random_phase_coherence(
    bperp: np.ndarray,
    n_trial_wraps: float,
    n_rand: int = N_RAND,
    seed: int = RANDOM_SEED,
    ifgday_ix: np.ndarray | None = None,
    n_image: int | None = None,
    chunk_size: int = 20_000,
) -> np.ndarray:
    """Temporal coherence (n_rand,) of ps_topofit on pixels of uniformly random phase.

    ``bperp`` (n_ifg,) m, per interferogram. Single reference: each interferogram phase is
    uniform on [0, 2 pi). Small baselines (``ifgday_ix`` (n_ifg, 2) 0-based image pairs and
    ``n_image`` given): a random phase per image, each interferogram the difference of its pair.
    Draws are taken in fixed-size blocks from one generator, so the result depends only on the
    arguments.
    """
    bperp = np.asarray(bperp, dtype=np.float64)
    n_ifg = len(bperp)
    rng = np.random.default_rng(seed)
    coh = np.empty(n_rand)
    for s in range(0, n_rand, chunk_size):
        e = min(s + chunk_size, n_rand)
        if ifgday_ix is None:
            rand_ifg = 2 * np.pi * rng.random((e - s, n_ifg))
        else:
            ifgday_ix = np.asarray(ifgday_ix)
            rand_image = 2 * np.pi * rng.random((e - s, int(n_image)))
            rand_ifg = rand_image[:, ifgday_ix[:, 1]] - rand_image[:, ifgday_ix[:, 0]]
        _, _, coh[s:e], _ = ps_topofit(
            np.exp(1j * rand_ifg), bperp, n_trial_wraps, chunk_size=e - s
        )
    return coh


def random_phase_distribution(
    bperp: np.ndarray,
    n_trial_wraps: float,
    n_rand: int = N_RAND,
    seed: int = RANDOM_SEED,
    ifgday_ix: np.ndarray | None = None,
    n_image: int | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Random-phase coherence histogram: ``Nr`` (100,) counts, ``coh_bins`` (100,) bin centres,
    ``Nr_max_nz_ix`` 0-based index of the last non-empty bin."""
    coh_rand = random_phase_coherence(bperp, n_trial_wraps, n_rand, seed, ifgday_ix, n_image)
    nr = hist_centres(coh_rand, COH_BINS)
    nonzero = np.flatnonzero(nr)
    nr_max_nz_ix = int(nonzero[-1]) if len(nonzero) else 0
    return nr, COH_BINS.copy(), nr_max_nz_ix
