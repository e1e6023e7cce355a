"""Stack profiles: the scene and signal parameters of the ``easy`` and ``realistic`` flavours."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """Scene and signal parameters of a stack flavour (units in the field names)."""

    name: str
    n_dates: int
    span_years: float  # minimum time span of the acquisitions
    min_skipped: int  # 12-day slots skipped at least (missing acquisitions)
    ps_fraction: float  # PS per land pixel (mean)
    ps_da: tuple[float, float]  # nominal amplitude dispersion of PS, uniform range
    ds_coh_inf: tuple[float, float]  # long-term coherence of distributed scatterers
    ds_alpha12: tuple[float, float]  # 12-day correlation of the decorrelating part
    water_fraction: float
    noise_fraction: float
    atm_std_rad: tuple[float, float]  # per-date turbulent atmosphere std, uniform range
    strat_std_rad_per_km: float  # per-date stratified delay coefficient std
    ramp_std_rad: float  # per-date orbital ramp across the scene, per axis
    calib_sigma: float  # log-std of the per-date amplitude gain
    thermal_rel: float  # thermal noise amplitude relative to the mean backscatter
    noisy_date_factor: float  # thermal noise factor of one bad date (1 = none)
    bowl_peak_mm_yr: float  # LOS rate at the bowl centre (negative = away from satellite)
    bowl_sigma_frac: float  # Gaussian bowl sigma as a fraction of the shorter scene side
    bowl_centre_spread: float  # bowl centre drawn within this central fraction of each side
    seasonal_amp_mm: float
    regional_std_mm_yr: float  # smooth regional LOS rate field std
    dem_err_ps_std_m: float
    dem_err_ds_std_m: float
    terrain_relief_m: float
    bperp_std_m: float
    bpar_std_m: float


PROFILES: dict[str, Profile] = {
    "easy": Profile(
        name="easy",
        n_dates=48,
        span_years=2.1,
        min_skipped=0,
        ps_fraction=0.03,
        ps_da=(0.05, 0.25),
        ds_coh_inf=(0.1, 0.4),
        ds_alpha12=(0.3, 0.8),
        water_fraction=0.04,
        noise_fraction=0.02,
        atm_std_rad=(0.1, 0.3),
        strat_std_rad_per_km=0.1,
        ramp_std_rad=0.1,
        calib_sigma=0.15,
        thermal_rel=0.2,
        noisy_date_factor=1.0,
        bowl_peak_mm_yr=-12.0,
        bowl_sigma_frac=0.25,
        bowl_centre_spread=0.1,
        seasonal_amp_mm=3.0,
        regional_std_mm_yr=0.0,
        dem_err_ps_std_m=3.0,
        dem_err_ds_std_m=1.0,
        terrain_relief_m=150.0,
        bperp_std_m=60.0,
        bpar_std_m=25.0,
    ),
    "realistic": Profile(
        name="realistic",
        n_dates=30,
        span_years=1.0,
        min_skipped=2,
        ps_fraction=0.03,
        ps_da=(0.08, 0.40),
        ds_coh_inf=(0.0, 0.25),
        ds_alpha12=(0.2, 0.7),
        water_fraction=0.06,
        noise_fraction=0.04,
        atm_std_rad=(0.6, 1.4),
        strat_std_rad_per_km=1.0,
        ramp_std_rad=0.5,
        calib_sigma=0.3,
        thermal_rel=0.35,
        noisy_date_factor=2.0,
        bowl_peak_mm_yr=-45.0,
        bowl_sigma_frac=0.12,
        bowl_centre_spread=0.5,
        seasonal_amp_mm=8.0,
        regional_std_mm_yr=0.7,
        dem_err_ps_std_m=8.0,
        dem_err_ds_std_m=2.0,
        terrain_relief_m=300.0,
        bperp_std_m=60.0,
        bpar_std_m=25.0,
    ),
}
