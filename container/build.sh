#!/usr/bin/env bash
# Build the benchmark image (the build.sh of the AI Energy Score scripts); arguments go to build-image,
# e.g. ./build.sh --base-image nvcr.io/nvidia/pytorch:25.01-py3 --extra-ca proxy.pem
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
exec "${PYTHON:-python3}" "$here/batch_runner.py" build-image "$@"
