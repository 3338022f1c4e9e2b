#!/bin/sh
# One capability matrix for the simulated cluster of cluster.yaml: `hami conformance run` per node (its
# profile, its vendor's plugin, recorded under the node's name), then `hami conformance merge`.
# Usage (repository root): sh examples/multi-vendor-cluster/cluster_matrix.sh OUT_DIR
set -eu
out=${1:?usage: cluster_matrix.sh OUT_DIR}
here=$(dirname "$0")
bin=${HAMI:-.venv/bin/hami}
py=${PYTHON:-.venv/bin/python}
mkdir -p "$out/nodes"
installed=$($bin plugins --json 2>/dev/null | $py -c 'import json,sys; print(" ".join(p["name"] for p in json.load(sys.stdin)["plugins"]))' || true)
$py -c 'import sys, yaml; [print(n, e["profile"], e["vendor"]) for n, e in yaml.safe_load(open(sys.argv[1]))["nodes"].items()]' \
    "$here/cluster.yaml" | while read -r node profile vendor; do
  case " $installed " in
    *" $vendor "*) $bin conformance run --backend sim --plugin "$vendor" --sim-node "$profile" --node-name "$node" \
                     --out "$out/nodes/$node" --no-progress ;;
    *) echo "skipped $node: plugin $vendor not installed" ;;
  esac
done
$bin conformance merge --out "$out" -o "$out/capability-matrix.json" "$out"/nodes/*/capability-matrix.json
