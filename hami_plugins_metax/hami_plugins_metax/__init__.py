"""hami-hal plugin for MetaX GPUs (C500 family): discovery through ``mx-smi``, whole GPUs in MetaXLink zones,
sGPU shares with QoS policies."""

__version__ = "0.1.0"
