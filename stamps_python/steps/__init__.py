"""One module per StaMPS processing step (and its Small Baseline variant).

Every step's ``run`` takes the resolved parameters of its directory (``parms.load_parms``, or
``parms.with_defaults`` of a partial dict): a parameter's default lives in the parameter spec of
:mod:`stamps_python.parms` only, and a parameter missing from what a step is given is a one-line
StampsError naming it. No step module imports another.
"""
