"""hami-hal plugin for Cambricon MLUs: discovery through ``cnmon``, dynamic sMLU shares, the DSMLU profile."""

__version__ = "0.1.0"
