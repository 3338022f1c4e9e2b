"""Generate ``docs/hooks.md`` from the hookspec docstrings, so the reference cannot drift from the contract.

``python -m hami_hal.hookdoc --write docs/hooks.md`` rewrites the file; ``--check docs/hooks.md`` exits 1
with one line when it is stale (a test runs the same comparison). Docstring layout: see
:mod:`hami_hal.hookspecs`.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from pathlib import Path

from . import hookspecs
from .plugin_loading import REQUIRED_HOOKS

INTRO = """# hami-hal hooks

<!-- Generated from hami_hal/hookspecs.py by `python -m hami_hal.hookdoc --write docs/hooks.md`.
     Edit the docstrings there, not this file; tests/test_hooks_doc_current.py fails when it is stale. -->

Every hook a vendor plugin can implement, as declared in
[`hami_hal/hookspecs.py`](../hami_hal/hookspecs.py). Mark implementations with `hami_hal.hookimpl`.

Rules that hold for every hook:

- **Routing.** The core calls a hook only with the calling plugin's own devices (it routes by
  `Device.vendor`), so an implementation never filters out other vendors.
- **Opt-in arguments.** An implementation may accept *fewer* arguments than listed (pluggy's opt-in
  arguments); it may never accept an argument the spec does not list. An unknown hook name or an
  extra argument makes the plugin fail at load time with a `PluginLoadError`.
- **firstresult.** `firstresult: yes` hooks answer one question: the first non-`None` answer wins.
  `firstresult: no` hooks collect one answer per plugin.
- **Required.** `hami_hal_vendor` and `hami_hal_discover`; every other hook has a documented default.
- **Rules as data.** A vendor rule the scheduler must also apply (device sets, pod annotations,
  budgets, templates) is data on `VendorInfo` or the partition model, not a hook: the scheduler
  does not load plugins. See [writing-a-plugin.md](writing-a-plugin.md).
- **Simulation.** Node-side hooks receive a `NodeContext`. When `context.backend == "sim"`,
  `context.sim` holds the plugin's part of the simulated node; answer through your fake SDK built from
  it, running the same code as on real hardware.
- **Errors.** Raise `hami_hal.errors.HalError` (or a subclass) with a one-line, user-facing message.

Each hook below has a test named `test_hook_<hookname>` (see `tests/test_hooks_acme.py`), and
`tests/test_hooks_meta.py` fails when a hook is missing here or has no test.
"""

_BANNER = re.compile(r"^# (\w[\w ]*) hooks$")


def _markdown(text: str) -> str:
    """reST inline markup of the docstrings → Markdown."""
    text = re.sub(r":(?:class|func|mod|meth|attr):`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def _hooks() -> list[tuple[str, str]]:
    """(section, hook name) in source order; the section comes from the ``# <Name> hooks`` banners."""
    lines = inspect.getsource(hookspecs).splitlines()
    banners = [(i + 1, m.group(1)) for i, line in enumerate(lines) if (m := _BANNER.match(line))]
    out = []
    for name, fn in vars(hookspecs).items():
        if name.startswith("hami_hal_") and inspect.isfunction(fn):
            line = inspect.getsourcelines(fn)[1]
            section = next((s for at, s in reversed(banners) if at < line), "Other")
            out.append((line, section, name))
    return [(section, name) for _, section, name in sorted(out)]


def _parts(doc: str) -> tuple[str, list[str], str, list[tuple[str, str]], str, str]:
    """summary, other paragraphs, When, params, Return, Default."""
    paras = [p.strip() for p in re.split(r"\n\s*\n", doc.strip()) if p.strip()]
    summary, notes, when, params, ret, default = paras[0], [], "", [], "", ""
    for p in paras[1:]:
        if p.startswith("When:"):
            when = p
        elif p.startswith("Return:"):
            ret = p
        elif p.startswith("Default:"):
            default = p
        elif p.startswith(":param "):
            for m in re.finditer(r":param (\w+):\s*(.*?)(?=\n:param |\Z)", p, re.S):
                params.append((m.group(1), " ".join(m.group(2).split())))
        else:
            notes.append(p)
    return summary, notes, when, params, ret, default


def render() -> str:
    """The whole ``docs/hooks.md``."""
    out = [INTRO]
    current = None
    for section, name in _hooks():
        fn = getattr(hookspecs, name)
        if section != current:
            out.append(f"## {section}\n")
            current = section
        args = ", ".join(inspect.signature(fn).parameters)
        first = "yes" if fn.hami_hal_spec["firstresult"] else "no"
        summary, notes, when, params, ret, default = _parts(inspect.getdoc(fn) or "")
        head = f"firstresult: {first}." + (" **Required.**" if name in REQUIRED_HOOKS else "")
        block = [f"### {name}\n", f"    {name}({args})\n", head + "\n", _markdown(summary) + "\n"]
        block += [_markdown(n) + "\n" for n in notes]
        if when:
            block.append(_markdown(when) + "\n")
        if params:
            block.append("Parameters:\n\n" + "\n".join(f"- `{p}`: {_markdown(d)}" for p, d in params) + "\n")
        if ret:
            block.append(_markdown(ret) + "\n")
        if default and name not in REQUIRED_HOOKS:
            block.append(_markdown(default) + "\n")
        out.append("\n".join(block))
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hami_hal.hookdoc", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="PATH", help="write the reference to PATH")
    group.add_argument("--check", metavar="PATH", help="exit 1 when PATH differs from the generated text")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        Path(args.write).write_text(text)
        return 0
    if args.check:
        if Path(args.check).read_text() != text:
            print(f"{args.check} is stale: run python -m hami_hal.hookdoc --write {args.check}", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
