"""Sentinel-1 TOPS azimuth misregistration from topsStack's ESD products, and the burst-seam
check of a PS run (``esd_misreg``); the numerics are in :mod:`stamps_python.numerics.esd`."""
