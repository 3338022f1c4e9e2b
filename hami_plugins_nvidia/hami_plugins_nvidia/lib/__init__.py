"""The CUDA interposer (``libvgpu.so``) is compiled into this folder at build time (see ``setup.py``).

It is a package so that setuptools ships the library as package data without warning about an
importable folder missing from its ``packages``.
"""
