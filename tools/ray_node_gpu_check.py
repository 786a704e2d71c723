"""The ray executor's node side on real GPUs, without Ray.

What a probe sees, how Ray's GPU ids become UUIDs, and the wait for GPUs that another process
still uses. Ray itself does not travel to the GPU machine (its wheel is larger than what a call
carries), so this checks the parts that read NVML, where they run on a node:

    PYTHONPATH=$PWD:$PWD/container python3 tools/ray_node_gpu_check.py
"""

from __future__ import annotations

import subprocess
import sys
import time

from orchestrator.execution.executors import ray_node
from orchestrator.execution.gpus import inventory

HOLD = (
    "import torch, time; x = torch.ones(1, device='cuda'); print('held', flush=True); "
    "time.sleep(60)"
)


def main() -> None:
    info = ray_node.probe("node-0", 1, "local", "unused")
    print(
        f"probe: host {info.host}, {len(info.gpus)} GPU(s), {info.gpu_name}, runner {info.runner},"
    )
    print(f"       software {info.software_id}, problem {info.problem!r}")
    gpus = inventory()
    ids = [str(i) for i in range(len(gpus))]
    mapped = ray_node._gpus(ids, gpus)
    for gpu_id, gpu in zip(ids, mapped, strict=True):
        print(f"Ray GPU id {gpu_id} -> {gpu.uuid} ({gpu.name}, {gpu.memory_total_gib:.0f} GiB)")
    first = (gpus[0].uuid,)
    print(f"idle GPU: wait_until_free -> {ray_node.wait_until_free(first, 1)!r}")
    holder = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    began = time.monotonic()
    busy = ray_node.wait_until_free(first, 3)
    print(f"GPU held by process {holder.pid}: after {time.monotonic() - began:.1f} s -> {busy!r}")
    holder.kill()
    holder.wait()
    began = time.monotonic()
    free = ray_node.wait_until_free(first, 20)
    print(f"holder killed: free after {time.monotonic() - began:.1f} s -> {free!r}")


if __name__ == "__main__":
    main()
