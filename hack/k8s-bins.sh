#!/usr/bin/env bash
# Builds the real control plane the end-to-end tests run against (kube-apiserver, kube-scheduler,
# etcd) and helm, from their Go modules, into a cache outside the tree keyed by version:
#   ${HAMI_K8S_CACHE:-${XDG_CACHE_HOME:-~/.cache}/hami-hal/k8s}/<kubernetes version>/
# A warm run (all binaries present) builds nothing. Prints the bin folder on the last line of stdout.
#
# Why a temporary module: `go install pkg@version` refuses k8s.io/kubernetes because its go.mod
# replaces every k8s.io staging module with a local path; here each one is pinned to the published
# v0.<minor>.<patch> instead.
#
# Environment: K8S_VERSION (1.37.2), ETCD_VERSION (3.6.17), HELM_VERSION (3.22.0),
# HAMI_K8S_JOBS (go build -p, default 2), HAMI_K8S_ONLY (space-separated subset: k8s etcd helm).
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.6.17}"
HELM_VERSION="${HELM_VERSION:-3.22.0}"
JOBS="${HAMI_K8S_JOBS:-2}"
ONLY="${HAMI_K8S_ONLY:-k8s etcd helm}"
CACHE_ROOT="${HAMI_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hami-hal/k8s}"
BIN="$CACHE_ROOT/$K8S_VERSION"

for v in "$K8S_VERSION" "$ETCD_VERSION" "$HELM_VERSION"; do
  [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "k8s-bins: version '$v' is not X.Y.Z" >&2; exit 2; }
done
command -v go >/dev/null || { echo "k8s-bins: no 'go' on PATH (Go >= 1.26 needed)" >&2; exit 3; }

export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:--trimpath}" CGO_ENABLED=0
export GOMAXPROCS="${GOMAXPROCS:-$JOBS}"
LDFLAGS_BASE="-s -w"
mkdir -p "$BIN"
start=$(date +%s)
built=()

want() { [[ " $ONLY " == *" $1 "* ]]; }

# A fresh module in a temp folder; removed on exit.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/hami-k8s-bins.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

build_k8s() {
  local need=()
  for b in kube-apiserver kube-scheduler; do [[ -f "$BIN/$b" && -x "$BIN/$b" ]] || need+=("$b"); done
  ((${#need[@]})) || return 0
  local minor="${K8S_VERSION#*.}" mod="$WORK/k8s"
  local staging="0.${minor}"
  mkdir -p "$mod" && cd "$mod"
  go mod init hami-hal.local/k8sbins >/dev/null 2>&1
  go mod edit -go=1.26.0 -require="k8s.io/kubernetes@v$K8S_VERSION"
  # The staging modules are the k8s.io/* ones k8s.io/kubernetes requires at v0.0.0.
  local gomod
  gomod="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  local m
  for m in $(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod" | sort -u); do
    go mod edit -replace="$m=$m@v$staging"
  done
  printf '//go:build tools\n\npackage tools\n\nimport (\n' > tools.go
  for b in "${need[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b" >> tools.go; done
  printf ')\n' >> tools.go
  go mod tidy >/dev/null
  local vpkg=k8s.io/component-base/version
  local ld="$LDFLAGS_BASE -X $vpkg.gitVersion=v$K8S_VERSION -X $vpkg.gitMajor=${K8S_VERSION%%.*}"
  ld="$ld -X $vpkg.gitMinor=${minor%%.*} -X $vpkg.gitTreeState=clean"
  for b in "${need[@]}"; do
    go build -p "$JOBS" -ldflags="$ld" -o "$WORK/$b.bin" "k8s.io/kubernetes/cmd/$b"
    mv "$WORK/$b.bin" "$BIN/$b"
    built+=("$b")
  done
}

build_etcd() {
  [[ -f "$BIN/etcd" && -x "$BIN/etcd" ]] && return 0
  local mod="$WORK/etcd"
  mkdir -p "$mod" && cd "$mod"
  go mod init hami-hal.local/etcdbin >/dev/null 2>&1
  go mod edit -go=1.26.0 -require="go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  # The etcd main module only wraps etcdmain.Main; the server module holds it.
  printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' > main.go
  go mod tidy >/dev/null
  go build -p "$JOBS" -ldflags="$LDFLAGS_BASE" -o "$WORK/etcd.bin" .
  mv "$WORK/etcd.bin" "$BIN/etcd"
  built+=(etcd)
}

build_helm() {
  [[ -f "$BIN/helm" && -x "$BIN/helm" ]] && return 0
  # helm's module has no replace directives, so go install works directly.
  GOBIN="$WORK/gobin" go install -ldflags="$LDFLAGS_BASE -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
  mv "$WORK/gobin/helm" "$BIN/helm"
  built+=(helm)
}

want etcd && build_etcd
want k8s && build_k8s
want helm && build_helm

took=$(( $(date +%s) - start ))
if ((${#built[@]})); then
  echo "k8s-bins: cold build of ${built[*]} in ${took}s (go build -p $JOBS, GOMAXPROCS=$GOMAXPROCS)" >&2
else
  echo "k8s-bins: warm, nothing to build (${took}s)" >&2
fi
echo "$BIN"
