"""hami-hal plugin for Huawei Ascend NPUs (910A/B/C, 310P): vNPU templates, hami-vnpu-core, HCCS."""

__version__ = "0.1.0"
