"""Exploration (CUDA): how fast the image block's matrix multiplications run in bf16 (cuBLAS, what the
engine uses) against Inductor's max-autotune Triton templates, at 1024x1024's sequence length.

    python bench/probes/matmul_ceiling.py

The bf16 GPU part is ~64% matmuls (bench/results/gpu-nvidia-h200-kernels-2026-12-03.txt); this says how
much of that a faster GEMM could take back. Result: bench/results/gpu-nvidia-h200-matmuls-2026-12-03.txt.
"""
import json

import torch
from cuda_timing import cuda_ms  # this folder's: on the path when run as a script

TOKENS = 4096 + 128  # 1024x1024's image tokens and a short caption
SHAPES = {  # (in, out) of the block's linear layers, as the engine fuses them
    "qkv": (3840, 3 * 3840),
    "attention out": (3840, 3840),
    "feed-forward in (w1|w3)": (3840, 2 * 10240),
    "feed-forward out (w2)": (10240, 3840),
}




def main() -> None:
    import torch._inductor.config as inductor_config

    inductor_config.max_autotune_gemm_backends = "TRITON,ATEN"
    rows = []
    for name, (k, n) in SHAPES.items():
        x = torch.randn(TOKENS, k, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02
        flop = 2 * TOKENS * k * n
        cublas = cuda_ms(lambda x=x, w=w: torch.nn.functional.linear(x, w), repeats=50)
        tuned_fn = torch.compile(lambda a, b: torch.nn.functional.linear(a, b), mode="max-autotune-no-cudagraphs",
                                 dynamic=False)
        tuned = cuda_ms(lambda x=x, w=w, tuned_fn=tuned_fn: tuned_fn(x, w), repeats=50)
        rows.append({"layer": name, "m_k_n": [TOKENS, k, n], "cublas_ms": round(cublas, 4),
                     "cublas_tflops": round(flop / cublas / 1e9, 1), "max_autotune_ms": round(tuned, 4),
                     "max_autotune_tflops": round(flop / tuned / 1e9, 1)})
        print("JSON " + json.dumps(rows[-1]), flush=True)
    per_block = {key: round(sum(r[key] for r in rows), 4) for key in ("cublas_ms", "max_autotune_ms")}
    print("JSON " + json.dumps({"card": torch.cuda.get_device_name(), "torch": torch.__version__,
                                "per_block_ms": per_block,
                                "per_image_ms": {k: round(v * 32 * 8, 1) for k, v in per_block.items()}}))


if __name__ == "__main__":
    main()
