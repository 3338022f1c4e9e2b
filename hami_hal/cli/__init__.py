"""The ``hami`` command line (:mod:`.main`). Subcommands register through the ``hami_hal.cli`` group."""

from .main import CLI_ENTRY_POINT_GROUP, build_parser

__all__ = ["CLI_ENTRY_POINT_GROUP", "build_parser"]
