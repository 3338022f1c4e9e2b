"""hami-scheduler: a kube-scheduler extender for fractional accelerators and a trace simulator.

Both run the same decision code: node policies in :mod:`hami_scheduler.policies` score nodes and
choose devices; the hami-hal allocation engine is the authority on what fits.
"""

__version__ = "0.1.0"
