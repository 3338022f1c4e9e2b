#!/usr/bin/env bash
# Builds the hami-hal image (deploy/Dockerfile) when a container daemon answers; otherwise says so and
# exits 0, so CI without Docker records "not built" instead of failing.
#   IMAGE (hami-hal/hami-hal:0.1.0)
set -euo pipefail
IMAGE="${IMAGE:-hami-hal/hami-hal:0.1.0}"
cd "$(dirname "$0")/.."
if ! command -v docker >/dev/null 2>&1; then
  echo "build-images: no docker client on PATH; image $IMAGE not built"; exit 0
fi
if ! docker info >/dev/null 2>&1; then
  echo "build-images: no container daemon answers (docker info failed); image $IMAGE not built"; exit 0
fi
start=$(date +%s)
DOCKER_BUILDKIT=1 docker build -f deploy/Dockerfile -t "$IMAGE" .
echo "build-images: built $IMAGE in $(( $(date +%s) - start ))s"
