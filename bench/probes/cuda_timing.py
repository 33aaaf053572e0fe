"""What the probes share: GPU time of a call by CUDA events, and their JSON result lines."""
import json
import statistics

import torch


def emit(**row):
    print("JSON " + json.dumps(row), flush=True)


def cuda_ms(call, repeats: int, rounds: int = 5) -> float:
    """Median over `rounds` of the GPU time per call, `repeats` calls back to back (one warm-up call first)."""
    call()
    torch.cuda.synchronize()
    out = []
    for _ in range(rounds):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(repeats):
            call()
        end.record()
        torch.cuda.synchronize()
        out.append(start.elapsed_time(end) / repeats)
    return statistics.median(out)
