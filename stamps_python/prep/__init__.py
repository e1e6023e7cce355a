"""prep_isce's work, what StaMPS' mt_prep does for an ISCE2 topsStack (the CLI is
``stamps_python/prep_isce.py``):

- :mod:`.inputs`: the options, and the checks of the stack, the run directory and the pair list
  made before anything is written;
- :mod:`.layout`: the patch windows, laid out with overlap as mt_prep;
- :mod:`.calamp`: the amplitude calibration constants' line sample and ``calamp.txt``;
- :mod:`.candidates`: the single amplitude pass (D_A or D_a_sb) and its exact second pass;
- :mod:`.geometry`: the geometry rasters and baseline grids read for the candidates;
- :mod:`.patch_writer`: each patch's share of the candidate stream, written by a thread;
- :mod:`.prepare`: the whole run: staging folder, metadata, commit into the run directory.
"""
