"""Corner-reflector InSAR without unwrapping (``cr_insar``, docs/cr_insar.md): the CR list and
stack readers (``inputs``), sub-pixel location and SCR (``locate``), the run (``run``), its
outputs (``outputs``) and the phase-level simulation of the paper's case (``simulate``). The
numerics are :mod:`stamps_python.numerics.cr_search`."""
