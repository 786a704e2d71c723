#!/usr/bin/env bash
# One benchmark run, as the run_docker.sh of the AI Energy Score scripts took it:
#   ./run_docker.sh -n 100 --config-name text_generation backend.model=openai/gpt-oss-20b [key=value ...]
#   ./run_docker.sh --num-samples 1000 --config-name text_generation backend.model=openai/gpt-oss-20b
#   ./run_docker.sh -n 100 --config-name image_generation backend.model=black-forest-labs/FLUX.1-dev
# -n / --num-samples: prompts (20 when not given, as there); every other argument goes on to
# `python batch_runner.py run` (options such as --runner, --output-dir, and key=value overrides),
# which writes ./batch_results/individual_runs/<model>_<state>/. From their environment:
# DOCKER_IMAGE is the image; BENCHMARK_BACKEND is pytorch (default) or vllm, which sends the prompts
# to the server at VLLM_ENDPOINT; HF_TOKEN and VLLM_API_KEY are read.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
model="" ; num=20 ; args=()
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -n|--num-prompts|--num-samples)
            [ $# -ge 2 ] || { echo "run_docker.sh: $1 needs a number" >&2; exit 2; }
            num="$2"; shift 2 ;;
        --num-prompts=*|--num-samples=*) num="${1#*=}"; shift ;;
        --config-name|--config-name=*)
            if [ "$1" = "--config-name" ]; then config="${2:-}"; shift 2; else config="${1#*=}"; shift; fi
            case "$config" in
                text_generation) ;;
                image_generation) args+=(--task image_gen) ;;
                *) echo "run_docker.sh: --config-name $config: expected text_generation or image_generation" >&2; exit 2 ;;
            esac ;;
        backend.model=*) model="${1#backend.model=}"; shift ;;
        *) args+=("$1"); shift ;;
    esac
done
[ -n "$model" ] || { echo "run_docker.sh: backend.model=<model> is required" >&2; exit 2; }
case "${BENCHMARK_BACKEND:-pytorch}" in
    pytorch) ;;
    vllm)
        [ -n "${VLLM_ENDPOINT:-}" ] || { echo "run_docker.sh: BENCHMARK_BACKEND=vllm needs VLLM_ENDPOINT (http://host:8000/v1)" >&2; exit 2; }
        args=(--backend vllm --endpoint "$VLLM_ENDPOINT" "${args[@]}") ;;
    *) echo "run_docker.sh: BENCHMARK_BACKEND=$BENCHMARK_BACKEND: expected pytorch or vllm" >&2; exit 2 ;;
esac
[ -z "${DOCKER_IMAGE:-}" ] || args=(--image "$DOCKER_IMAGE" "${args[@]}")
exec "${PYTHON:-python3}" "$here/batch_runner.py" run --model "$model" -n "$num" "${args[@]}"
