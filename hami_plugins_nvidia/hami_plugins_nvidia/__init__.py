"""hami-hal plugin for NVIDIA GPUs: NVML discovery, topology, health, metrics, vGPU shares and MIG.

The plugin module registered in the ``hami_hal.plugins`` entry-point group is :mod:`.plugin`.
"""

__version__ = "0.1.0"
