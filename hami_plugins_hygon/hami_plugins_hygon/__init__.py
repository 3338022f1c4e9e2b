"""hami-hal plugin for Hygon DCUs (HCUs): hy-smi discovery, vDCU shares, XGMI topology."""

__version__ = "0.1.0"
