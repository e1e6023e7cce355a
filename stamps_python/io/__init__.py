"""Readers for ISCE2 stacks and the HDF5 workspace products (ps1.h5, ph1.h5, ...)."""
