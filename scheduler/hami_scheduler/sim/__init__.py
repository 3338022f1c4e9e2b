"""Trace simulation of the FGD paper's method (Weng et al., ATC '23) on the openb GPU trace."""
