#!/usr/bin/env bash
# Installs what the tests need (if missing) and runs them. This is the README's
# test command and what CI runs, so a fresh machine and CI behave alike.
#
#   Debian: python3-torch python3-torchvision python3-onnx python3-numpy
#           libopenblas0-openmp (makes the exports ~5x faster; see scripts/fastblas.py)
#           (to export DeiT test models on demand; seeded weights)
#   npm:    onnxruntime-node@1.30.0 from package-lock.json, --ignore-scripts
#           (its post-install downloads; the CPU library ships in the package)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

if ! /usr/bin/python3 -c 'import torch, onnx, numpy' >/dev/null 2>&1; then
	echo "test.sh: installing python3-torch, python3-onnx (Debian)" >&2
	SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
		python3-torch python3-torchvision python3-onnx python3-numpy libopenblas0-openmp >/dev/null
fi
if [ ! -d node_modules/onnxruntime-node ]; then
	echo "test.sh: installing onnxruntime-node (npm ci --ignore-scripts)" >&2
	npm ci --ignore-scripts --no-audit --no-fund >/dev/null
fi
go test ./... "$@"
# The plugin example is its own module: build it and run its tests too.
(cd examples/plugin && go test ./... "$@")
