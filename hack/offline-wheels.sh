#!/usr/bin/env bash
# Wheels for a GPU host that cannot reach PyPI (as the H200 records of docs/results were made):
# its Python (3.12, with torch, pluggy, grpcio, prometheus-client, pyyaml, nvidia-ml-py) lacks pydantic, cffi and
# kubernetes; the node agent's committed gRPC stubs need grpcio/protobuf at least as new as the ones pinned here.
# Usage: hack/offline-wheels.sh [PYTHON_VERSION]  -> .whl/ (core needs) and .whl-node/ (node agent only).
#        OLD=<commit> hack/offline-wheels.sh  also writes .whl/old-csrc.tgz, the interposer's sources at that commit
#        (bench/issue18_gpu.sh stage 24's "old" arm: the device's copy of the tree has no usable .git).
# On the host: pip install --no-index --no-deps --target /tmp/site .whl/*.whl   (see the records' READMEs).
set -euo pipefail
cd "$(dirname "$0")/.."
py="${1:-3.12}"
get() {  # get DIR PKG==VER...
  local dir="$1"; shift
  mkdir -p "$dir"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dir" "$@"
}
get .whl pydantic==2.12.5 pydantic-core==2.41.5 annotated-types==0.7.0 typing-inspection==0.4.2 \
  cffi==2.1.1 pycparser==3.12 kubernetes==34.1.0 google-auth==2.40.3 websocket-client==1.8.0 \
  requests-oauthlib==2.0.0 oauthlib==3.3.1 durationpy==0.10 rsa==4.9.1 pyasn1==0.6.1 pyasn1-modules==0.4.2 \
  cachetools==5.5.2
get .whl-node grpcio==1.85.3 protobuf==7.36.2
if [ -n "${OLD:-}" ]; then
  git archive "$OLD" hami_plugins_nvidia/hami_plugins_nvidia/csrc | gzip > .whl/old-csrc.tgz
  echo "interposer sources at $OLD in .whl/old-csrc.tgz"
fi
echo "wheels in .whl/ and .whl-node/ (both git-ignored: the device tool carries them by name, carry [\".whl\"])"
