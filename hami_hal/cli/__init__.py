"""The ``hami`` command line. Subcommands register through the ``hami_hal.cli`` entry-point group."""

from .main import CLI_ENTRY_POINT_GROUP, build_parser, main

__all__ = ["CLI_ENTRY_POINT_GROUP", "build_parser", "main"]
