"""stamps_python: a Python port of StaMPS (Stanford Method for Persistent Scatterers).

PS-InSAR and Small Baseline time-series analysis of ISCE2 topsStack stacks, following the MATLAB
StaMPS algorithms, parameter names, defaults and step boundaries.
"""

__version__ = "0.1.0"
