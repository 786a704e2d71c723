#!/usr/bin/env bash
# Build the CPU test image offline (no registry): a debootstrap'd Debian base, then the project's
# Dockerfile on top with the CPU torch wheel from this machine and the host CA bundle (for the
# TLS-intercepting proxy). Reuses the base image; the test image is rebuilt every time (its layers
# are cached, so only a changed benchmark is reinstalled). Needs root and a running engine.
#   tools/build_test_image.sh [PYTHON]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
python=${1:-python3}
base=ai_energy_score_base:bookworm
tag=${AI_ENERGY_SCORE_TEST_IMAGE:-ai_energy_score:cpu-test}

if ! docker image inspect "$base" >/dev/null 2>&1; then
    command -v debootstrap >/dev/null 2>&1 || {
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    }
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    mirror=${mirror:-$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null)}
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase --include=python3 bookworm "$rootfs" "$mirror" >/dev/null
    tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
    echo "imported $base"
fi

wheel=$(ls /opt/wheels/torch-*cpu*-cp311-*.whl 2>/dev/null | head -n 1 || true)
args=(--base-image "$base" --tag "$tag" --extra-ca /etc/ssl/certs/ca-certificates.crt)
[ -n "$wheel" ] && args+=(--wheel "$wheel")
"$python" "$here/batch_runner.py" build-image "${args[@]}"
