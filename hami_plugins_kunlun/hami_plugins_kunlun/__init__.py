"""hami-hal plugin for Kunlunxin XPU cards (P800): discovery through ``xpu-smi``, vXPU slices, XPU-link groups."""

__version__ = "0.1.0"
