"""``hami``: argparse entry point. Built-in subcommands and those of other distributions register alike.

A distribution adds a subcommand through the ``hami_hal.cli`` entry-point group: the entry point is a
callable ``register(subparsers)`` that adds its parser and sets ``func=handler`` with ``set_defaults``;
``handler(args) -> int`` returns the exit code. A :class:`HalError` anywhere becomes one red line on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from .. import __version__
from ..errors import HalError
from . import cmd_allocate, cmd_devices, cmd_metrics, cmd_plugins, cmd_profiles, cmd_schemas
from .output import error_line, warn_line

CLI_ENTRY_POINT_GROUP = "hami_hal.cli"
BUILTIN: list[Callable[[argparse._SubParsersAction], None]] = [
    cmd_plugins.register, cmd_devices.register, cmd_allocate.register, cmd_profiles.register,
    cmd_schemas.register, cmd_metrics.register,
]


def _external(subparsers: argparse._SubParsersAction) -> None:
    """Subcommands of other distributions; a broken one is skipped with a warning, not fatal."""
    for ep in sorted(entry_points(group=CLI_ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in subparsers.choices:
            warn_line(f"subcommand {ep.name!r} from {ep.value} clashes with an existing one; skipped")
            continue
        try:
            ep.load()(subparsers)
        except Exception as err:  # noqa: BLE001 - one broken plugin must not break the whole CLI
            warn_line(f"subcommand {ep.name!r} from {ep.value} could not be loaded: {err}")


#: Subcommands that other distributions of this project add, and the distribution to install for each.
OPTIONAL_COMMANDS = {"conformance": "hami-conformance", "scheduler": "hami-scheduler"}


def _not_installed(subparsers: argparse._SubParsersAction) -> None:
    """A stand-in for each project subcommand whose distribution is absent: one line saying what to install,
    instead of argparse's 'invalid choice'."""
    declared = {ep.name for ep in entry_points(group=CLI_ENTRY_POINT_GROUP)}
    for name, dist in OPTIONAL_COMMANDS.items():
        if name in subparsers.choices or name in declared:  # installed (a broken one was warned about)
            continue
        # No option prefix: every word after the command, --help included, lands in `rest`.
        p = subparsers.add_parser(name, help=f"(not installed: pip install {dist})", add_help=False,
                                  prefix_chars="\0")
        p.add_argument("rest", nargs="*", help=argparse.SUPPRESS)

        def missing(_args: argparse.Namespace, name: str = name, dist: str = dist) -> int:
            raise HalError(f"`hami {name}` comes with the {dist} distribution, which is not installed: "
                           f"pip install {dist}")

        p.set_defaults(func=missing)


def build_parser(external: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hami",
        description="Discover, partition and allocate AI accelerators through hami-hal plugins. "
                    "Without real devices the data comes from simulated profiles, and every output says so.",
    )
    parser.add_argument("--version", action="version", version=f"hami-hal {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in BUILTIN:
        register(subparsers)
    if external:
        _external(subparsers)
    _not_installed(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except HalError as err:
        error_line(str(err))
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
