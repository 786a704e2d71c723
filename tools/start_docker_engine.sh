#!/usr/bin/env bash
# Install (if needed) and start a Docker engine on a Debian machine, then wait until it answers.
# Used by .ci/run; safe to run when an engine already runs. Needs root.
set -euo pipefail
log=${DOCKERD_LOG:-/tmp/dockerd.log}
if docker info >/dev/null 2>&1; then
    echo "docker engine already running"
    exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        docker.io containerd runc >/dev/null
fi
setsid nohup dockerd >"$log" 2>&1 </dev/null &
for _ in $(seq 1 120); do
    if docker info >/dev/null 2>&1; then
        echo "docker engine started ($(docker version --format '{{.Server.Version}}'))"
        exit 0
    fi
    sleep 0.5
done
echo "docker engine did not answer within 60 s; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 1
