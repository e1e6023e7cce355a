"""Scatterers: pixel classes (water, noise, PS and their sidelobes, distributed and short-lived
distributed scatterers), their amplitudes, coherence and the SLC point-target response."""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from stamps_python.synthetic.fields import _CoarseGrid, _rng, _smooth_field, _uniform32
from stamps_python.synthetic.geometry import _Geometry
from stamps_python.synthetic.profiles import Profile
from stamps_python.synthetic.truth import _h5_write

CLASS_NAMES = {
    0: "nodata_zero",
    1: "ps",
    2: "ps_sidelobe",
    3: "distributed",
    4: "noise",
    5: "distributed_short",  # DS coherent for 12-24 days only (ds_short_fraction > 0)
}


# short-lived distributed scatterers (ds_short_fraction): patches of the smooth random field
# with spectrum (k^2 + 1/outer^2)^(-beta/2) above a quantile; outer scale ~ agricultural fields
SHORT_DS_PATCH_M = 250.0
SHORT_DS_BETA = 3.0


# Sentinel-1 IW SLC point-target response: a Hamming-weighted spectrum (coefficient 0.75, range
# and azimuth) sampled finer than the resolution. Pixel spacing in units of 1/bandwidth: range
# 48.3 MHz / 64.35 MHz (IW2), azimuth about 327 Hz processed bandwidth / 486 Hz line rate.
S1_HAMMING = 0.75
S1_RANGE_SAMPLING = 0.75
S1_AZIMUTH_SAMPLING = 0.67


def _point_response(x: np.ndarray) -> np.ndarray:
    """Amplitude response at ``x`` (units of 1/bandwidth; float64) of a unit spectrum weighted by
    a Hamming window with coefficient S1_HAMMING; its peak, at x = 0, is S1_HAMMING."""
    x = np.asarray(x, dtype=np.float64)
    side = 0.5 * (1.0 - S1_HAMMING)
    return S1_HAMMING * np.sinc(x) + side * (np.sinc(x - 1.0) + np.sinc(x + 1.0))


@dataclass
class _Scene:
    """Scatterers: per-pixel SLC model terms and the PS / sidelobe lists."""

    pixel_class: np.ndarray  # uint8, CLASS_NAMES
    coh: np.ndarray  # complex64 coherent phasor (PS, coherent part of DS)
    a_ar: np.ndarray  # float32 amplitude of the decorrelating AR(1) part (DS)
    sig2: np.ndarray  # float32 power of the independent noise (all valid pixels)
    log_alpha: np.ndarray  # float32 log of the 12-day AR(1) correlation (DS)
    ps_r: np.ndarray
    ps_c: np.ndarray
    ps_da: np.ndarray  # nominal amplitude dispersion of each PS
    a_ps: np.ndarray  # PS amplitude (before the date gain)
    sl_r: np.ndarray
    sl_c: np.ndarray
    sl_p: np.ndarray  # index of the primary PS of each sidelobe
    sl_k: np.ndarray  # sidelobe amplitude relative to its PS (signed)
    sl_da: np.ndarray  # nominal amplitude dispersion of the sidelobe pixels
    ds_mask: np.ndarray
    sigma_th: float


def _short_ds_mask(
    rng: np.random.Generator, grid: _CoarseGrid, ds_mask: np.ndarray, fraction: float
) -> np.ndarray:
    """The ``fraction`` of the DS pixels ``ds_mask`` where a smooth random field is largest:
    patches of about SHORT_DS_PATCH_M (fields, bare or sparsely vegetated ground)."""
    rows, cols = ds_mask.shape
    field = _smooth_field(rng, grid, rows, cols, SHORT_DS_BETA, SHORT_DS_PATCH_M)
    if fraction >= 1.0 or not ds_mask.any():
        return ds_mask.copy()
    return ds_mask & (field > np.quantile(field[ds_mask], 1.0 - fraction))


def _build_scene(
    seed: int, prof: Profile, geom: _Geometry, hgt: np.ndarray, valid: np.ndarray,
    grid: _CoarseGrid, h5: h5py.File, ds_short_fraction: float = 0.0,
    ds_short_alpha12: tuple[float, float] = (0.5, 0.9),
) -> tuple[_Scene, np.ndarray]:  # fmt: skip
    """Classify pixels (water, noise, PS, sidelobes, DS, short-lived DS) and set the SLC model
    terms.

    Returns the scene and the smooth field that also modulates the seasonal amplitude.
    """
    rows, cols = valid.shape
    frng = _rng(seed, "fields")
    outer = 2.0 * geom.extent
    texture = _smooth_field(frng, grid, rows, cols, 3.0, outer)
    urban = _smooth_field(frng, grid, rows, cols, 4.0, outer)
    water_f = _smooth_field(frng, grid, rows, cols, 4.0, outer)
    patch_f = _smooth_field(frng, grid, rows, cols, 3.5, outer)
    mod_f = _smooth_field(frng, grid, rows, cols, 4.0, outer)

    crng = _rng(seed, "classes")
    hv = hgt[valid]
    h_norm = (hgt - hv.min()) / max(float(np.ptp(hv)), 1.0)
    water_f -= 3.0 * h_norm  # water gathers in the valleys
    del h_norm
    water = valid & (water_f > np.quantile(water_f[valid], 1.0 - prof.water_fraction))
    del water_f
    noise = (
        valid & ~water & (patch_f > np.quantile(patch_f[valid], 1.0 - 0.5 * prof.noise_fraction))
    )
    del patch_f
    noise |= (
        valid & ~water & (crng.random((rows, cols), dtype=np.float32) < 0.5 * prof.noise_fraction)
    )
    land = valid & ~water & ~noise
    urban -= urban.min()
    urban *= 1.2 / max(float(urban.max()), 1e-6)
    urban += 0.4
    urban *= prof.ps_fraction / float(urban[land].mean())
    np.minimum(urban, 0.5, out=urban)
    ps_mask = land & (crng.random((rows, cols), dtype=np.float32) < urban)
    del urban
    ds_mask = land & ~ps_mask

    srng = _rng(seed, "scatterers")
    amp0 = 50.0
    sigma_th = prof.thermal_rel * amp0
    a_bg = srng.standard_normal((rows, cols), dtype=np.float32)
    a_bg *= 0.25
    a_bg += 0.4 * texture
    del texture
    np.exp(a_bg, out=a_bg)
    a_bg *= amp0
    psi = _uniform32(srng, 0.0, 2 * np.pi, (rows, cols))
    coh = np.empty((rows, cols), dtype=np.complex64)
    coh.real = np.cos(psi)
    coh.imag = np.sin(psi)
    del psi
    a_ar = np.zeros((rows, cols), dtype=np.float32)
    sig2 = np.zeros((rows, cols), dtype=np.float32)
    log_alpha = np.zeros((rows, cols), dtype=np.float32)

    # distributed scatterers: coherent part + AR(1) decorrelating part + thermal noise
    lo, hi = prof.ds_coh_inf
    mix = srng.standard_normal((rows, cols), dtype=np.float32)
    mix *= 0.2
    mix += 0.5 + 0.25 * mod_f
    np.clip(mix, 0.0, 1.0, out=mix)
    gam_inf = mix
    gam_inf *= hi - lo
    gam_inf += lo
    alpha12 = _uniform32(srng, *prof.ds_alpha12, (rows, cols))
    short = None
    if ds_short_fraction > 0:  # own stream: the draws above and below are those of the default
        shrng = _rng(seed, "ds_short")
        short = _short_ds_mask(shrng, grid, ds_mask, ds_short_fraction)
        gam_inf[short] = 0.0
        alpha12[short] = _uniform32(shrng, *ds_short_alpha12, int(short.sum()))
    scale = np.where(ds_mask, a_bg * np.sqrt(gam_inf), np.float32(0.0))
    a_ar[ds_mask] = (a_bg * np.sqrt(1.0 - gam_inf))[ds_mask]
    sig2[ds_mask] = sigma_th**2
    log_alpha[ds_mask] = np.log(alpha12[ds_mask])
    if short is not None:
        _h5_write(h5, "coherence_12day", np.where(ds_mask, alpha12, np.float32(0.0)), "1",
                  "12-day correlation alpha12 of the decorrelating part of distributed "
                  "scatterers (classes 3 and 5; 0 elsewhere)")  # fmt: skip
    del alpha12
    _h5_write(h5, "temporal_coherence_inf", np.where(ds_mask, gam_inf, np.float32(0.0)), "1",
              "long-term coherence of distributed scatterers")  # fmt: skip
    del gam_inf, mix
    # noise pixels and water: independent complex Gaussian at every date
    sig2[noise] = a_bg[noise] ** 2 + sigma_th**2
    sig2[water] = (0.1 * a_bg[water]) ** 2 + sigma_th**2

    # persistent scatterers: A_ps exp(j psi) + clutter of power a_bg^2 + thermal
    ps_r, ps_c = np.nonzero(ps_mask)
    n_ps = ps_r.size
    ps_da = _uniform32(srng, *prof.ps_da, n_ps)
    clutter2 = a_bg[ps_r, ps_c].astype(np.float64) ** 2 + sigma_th**2
    a_ps = np.sqrt(clutter2) / (np.sqrt(2.0) * ps_da)
    scale[ps_r, ps_c] = a_ps
    sig2[ps_r, ps_c] = clutter2
    coh *= scale
    del scale

    # leakage of each PS into its 8 neighbours through the SLC point-target response; a
    # neighbour whose leaked amplitude is at least its own clutter amplitude is the PS's sidelobe
    u_rg = _uniform32(srng, -0.5, 0.5, n_ps)
    u_az = _uniform32(srng, -0.5, 0.5, n_ps)
    peak = _point_response(u_rg * S1_RANGE_SAMPLING) * _point_response(u_az * S1_AZIMUTH_SAMPLING)
    parts: list[tuple[np.ndarray, ...]] = []
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            rr, cc = ps_r + dr, ps_c + dc
            inside = (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
            take = np.flatnonzero(inside)
            rr, cc = rr[inside], cc[inside]
            coef = (
                _point_response((dc - u_rg[take]) * S1_RANGE_SAMPLING)
                * _point_response((dr - u_az[take]) * S1_AZIMUTH_SAMPLING)
                / peak[take]
            )
            leak2 = (coef * a_ps[take]) ** 2
            dominant = ds_mask[rr, cc] & (
                leak2 >= a_bg[rr, cc].astype(np.float64) ** 2 + sigma_th**2
            )
            parts.append((rr[dominant], cc[dominant], take[dominant], coef[dominant]))
    sl_r, sl_c, sl_p, sl_k = (np.concatenate(x) for x in zip(*parts, strict=True))
    # a pixel next to two PS is the sidelobe of the one leaking the most into it
    order = np.lexsort((-np.abs(sl_k * a_ps[sl_p]), sl_r * cols + sl_c))
    first = np.unique((sl_r * cols + sl_c)[order], return_index=True)[1]
    keep = np.sort(order[first])
    sl_r, sl_c, sl_p = (
        sl_r[keep].astype(np.int64),
        sl_c[keep].astype(np.int64),
        sl_p[keep].astype(np.int64),
    )
    sl_k = sl_k[keep].astype(np.float32)
    sl_bg = a_bg[sl_r, sl_c].astype(np.float64) ** 2 + sigma_th**2
    sl_da = np.sqrt(sl_bg) / (np.sqrt(2.0) * np.abs(sl_k) * a_ps[sl_p])
    del a_bg

    pixel_class = np.zeros((rows, cols), dtype=np.uint8)
    pixel_class[ds_mask] = 3
    if short is not None:
        pixel_class[short] = 5
    pixel_class[noise | water] = 4
    pixel_class[ps_mask] = 1
    pixel_class[sl_r, sl_c] = 2
    _h5_write(h5, "valid_mask", valid.astype(np.uint8), "1", "1 = SLC data, 0 = zero-filled border")
    _h5_write(h5, "pixel_class", pixel_class, "class", "see the file attribute class_names")
    _h5_write(
        h5, "ps_mask", ps_mask.astype(np.uint8), "1", "true persistent scatterers (no sidelobes)"
    )
    _h5_write(
        h5,
        "ps_sidelobe_mask",
        (pixel_class == 2).astype(np.uint8),
        "1",
        "sidelobe pixels of bright PS",
    )
    _h5_write(h5, "water_mask", water.astype(np.uint8), "1")
    scene = _Scene(
        pixel_class=pixel_class, coh=coh, a_ar=a_ar, sig2=sig2, log_alpha=log_alpha,
        ps_r=ps_r.astype(np.int64), ps_c=ps_c.astype(np.int64), ps_da=ps_da, a_ps=a_ps,
        sl_r=sl_r, sl_c=sl_c, sl_p=sl_p, sl_k=sl_k, sl_da=sl_da, ds_mask=ds_mask, sigma_th=sigma_th,
    )  # fmt: skip
    return scene, mod_f
