#!/bin/sh
# Entry point of the benchmark image: the single-run command, with the build's extra CA (if any)
# trusted by Python's HTTP clients too.
if [ -f /opt/ai_energy_score/ca-bundle.pem ]; then
    export SSL_CERT_FILE=/opt/ai_energy_score/ca-bundle.pem
    export REQUESTS_CA_BUNDLE=/opt/ai_energy_score/ca-bundle.pem
fi
exec /opt/venv/bin/python -m energy_bench "$@"
