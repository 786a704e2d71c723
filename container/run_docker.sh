#!/usr/bin/env bash
# One benchmark run, as the run_docker.sh of the AI Energy Score scripts took it:
#   ./run_docker.sh -n 100 --config-name text_generation backend.model=openai/gpt-oss-20b [key=value ...]
# It calls `python batch_runner.py run`, which writes ./batch_results/individual_runs/<model>_<state>/.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
model="" ; args=()
while [ $# -gt 0 ]; do
    case "$1" in
        -n|--num-prompts) args+=(-n "$2"); shift 2 ;;
        --config-name)
            [ "$2" = "text_generation" ] || { echo "run_docker.sh: only --config-name text_generation is supported" >&2; exit 2; }
            shift 2 ;;
        --config-name=*)
            [ "${1#*=}" = "text_generation" ] || { echo "run_docker.sh: only --config-name text_generation is supported" >&2; exit 2; }
            shift ;;
        backend.model=*) model="${1#backend.model=}"; shift ;;
        *) args+=("$1"); shift ;;
    esac
done
[ -n "$model" ] || { echo "run_docker.sh: backend.model=<model> is required" >&2; exit 2; }
exec "${PYTHON:-python3}" "$here/batch_runner.py" run --model "$model" "${args[@]}"
