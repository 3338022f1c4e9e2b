"""Generate (or check) the Python stubs of the kubelet device plugin API from ``v1beta1/api.proto``.

The stubs are committed so that the agent needs only ``grpcio`` and ``protobuf`` at run time. After
editing the proto, run ``python -m hami_hal.node.deviceplugin.generate``; ``--check`` exits 1 when the
committed files differ from what the installed ``grpcio-tools`` produces (a test runs it). The dev extra
pins ``grpcio-tools`` so every checkout generates byte-identical files.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

#: Repository-relative location: the proto is compiled with the repo root on the include path, so the
#: generated ``api_pb2_grpc`` imports ``hami_hal.node.deviceplugin.v1beta1.api_pb2`` (a package import).
PROTO = Path("hami_hal/node/deviceplugin/v1beta1/api.proto")
OUTPUTS = ("api_pb2.py", "api_pb2_grpc.py", "api_pb2.pyi")


def _root() -> Path:
    return Path(__file__).resolve().parents[3]


def generate(out_root: Path) -> dict[str, bytes]:
    """Run protoc (grpcio-tools) into ``out_root``; returns the generated files' bytes by name."""
    try:
        from grpc_tools import protoc
    except ImportError:
        raise SystemExit("grpcio-tools is not installed (pip install 'hami-hal[dev]')") from None
    root = _root()
    rc = protoc.main([
        "grpc_tools.protoc", f"-I{root}", f"--python_out={out_root}", f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}", str(root / PROTO),
    ])
    if rc != 0:
        raise SystemExit(f"protoc failed with exit code {rc}")
    folder = out_root / PROTO.parent
    return {name: (folder / name).read_bytes() for name in OUTPUTS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed stubs are not current")
    args = parser.parse_args(argv)
    target = _root() / PROTO.parent
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
    stale = [n for n, data in fresh.items() if not (target / n).is_file() or (target / n).read_bytes() != data]
    if args.check:
        if stale:
            print(f"stale generated stubs: {', '.join(stale)}; run python -m hami_hal.node.deviceplugin.generate")
            return 1
        return 0
    for name, data in fresh.items():
        (target / name).write_bytes(data)
    print(f"wrote {', '.join(fresh)} in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
