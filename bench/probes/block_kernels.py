"""Exploration (CUDA): where an image block's GPU time goes, whether Inductor's coordinate-descent tuning
pays, and whether cuDNN's float8 flash attention would be worth taking into the fp8 mode.

    python bench/probes/block_kernels.py attention      (needs nvidia-cudnn-frontend, not a zbot dependency)
    python bench/probes/block_kernels.py block --mode bf16|fp8 [--cdt]

Results and verdicts: bench/results/gpu-nvidia-h200-kernels-2026-12-03.txt (neither was taken: float8
attention's kernel is 14% faster than cuDNN's bf16 one at 4224 tokens, with 30-50x its error; the tuning
gains 1% of a block for twice the compile time).
"""
import argparse
import math
import sys
import time
from pathlib import Path

import torch
from cuda_timing import cuda_ms, emit  # this folder's: on the path when run as a script

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))






def top_kernels(call, n=5, top=14):
    from torch.profiler import ProfilerActivity, profile
    call()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(n):
            call()
        torch.cuda.synchronize()
    rows = []
    for e in prof.key_averages():
        t = getattr(e, "self_device_time_total", 0) or getattr(e, "self_cuda_time_total", 0)
        if t > 0:
            rows.append((t / n / 1000, e.count // n, e.key[:110]))
    rows.sort(reverse=True)
    total = sum(r[0] for r in rows)
    return total, rows[:top]


def rel(a, b):
    return float((a.float() - b.float()).norm() / b.float().norm())


def attention(args):
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    dev = "cuda"
    S, H, D = args.tokens, 30, 128
    g = torch.Generator(dev).manual_seed(0)
    results = {}
    for sharp in (1.0, 4.0):
        q = (torch.randn(1, S, H, D, generator=g, device=dev) * sharp).bfloat16()
        k = torch.randn(1, S, H, D, generator=g, device=dev).bfloat16()
        v = torch.randn(1, S, H, D, generator=g, device=dev).bfloat16()
        qh, kh, vh = (t.transpose(1, 2) for t in (q, k, v))  # b h s d views, as diffusers passes them
        ref = F.scaled_dot_product_attention(qh.float(), kh.float(), vh.float()).transpose(1, 2)
        mask = torch.ones(1, 1, 1, S, dtype=torch.bool, device=dev)
        for name, backend, m in (("cudnn", SDPBackend.CUDNN_ATTENTION, None),
                                 ("cudnn_mask", SDPBackend.CUDNN_ATTENTION, mask),
                                 ("flash", SDPBackend.FLASH_ATTENTION, None),
                                 ("efficient_mask", SDPBackend.EFFICIENT_ATTENTION, mask)):
            try:
                with sdpa_kernel(backend):
                    call = lambda: F.scaled_dot_product_attention(qh, kh, vh, attn_mask=m)
                    out = call().transpose(1, 2)
                    results[f"{name}_ms"] = cuda_ms(call, repeats=30)
                    results[f"{name}_err_sharp{sharp}"] = rel(out, ref)
            except Exception as e:  # noqa: BLE001
                results[f"{name}_error"] = repr(e)[:300]
        try:
            fp8 = CudnnFp8Attention(S, H, D)
            call = lambda: fp8(q, k, v)
            out = call()
            results["fp8_total_ms"] = cuda_ms(call, repeats=30)
            results[f"fp8_err_sharp{sharp}"] = rel(out, ref)
            qq = fp8.quantize(q), fp8.quantize(k), fp8.quantize(v)
            results["fp8_kernel_ms"] = cuda_ms(lambda: fp8.run(*qq), repeats=30)
            results["fp8_engine"] = str(getattr(fp8.graph, "selected_engine", "?"))[:200]
            total, rows = top_kernels(call)
            results["fp8_kernels"] = rows
            fp8_fixed = CudnnFp8Attention(S, H, D, fixed_qk=True)
            results[f"fp8_fixed_qk_err_sharp{sharp}"] = rel(fp8_fixed(q, k, v), ref)
            padded = CudnnFp8Attention(S, H, D, padded=True)
            results[f"fp8_padded_err_sharp{sharp}"] = rel(padded(q, k, v), ref)
            results["fp8_padded_total_ms"] = cuda_ms(lambda: padded(q, k, v), repeats=30)
            # python overhead of one execute: time with the GPU idle-free launch only
            torch.cuda.synchronize()
            began = time.perf_counter()
            for _ in range(50):
                fp8.run(*qq)
            results["fp8_host_us_per_call"] = (time.perf_counter() - began) / 50 * 1e6
            torch.cuda.synchronize()
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            results["fp8_error"] = repr(e)[:500]
        emit(section="attention", sharp=sharp, **results)
    flops = 4 * S * S * H * D
    emit(section="attention_tflops", **{k: round(flops / (v / 1000) / 1e12) for k, v in results.items()
                                       if k.endswith("_ms")})


class CudnnFp8Attention:
    """cuDNN's float8 flash attention (Hopper: fp8 in, fp8 out), per-tensor scales."""

    def __init__(self, S, H, D, fixed_qk=False, padded=False):
        import cudnn
        self.cudnn = cudnn
        self.fixed_qk = fixed_qk
        self.handle = cudnn.create_handle()
        e4m3, f32 = cudnn.data_type.FP8_E4M3, cudnn.data_type.FLOAT
        graph = cudnn.pygraph(io_data_type=e4m3, intermediate_data_type=f32, compute_data_type=f32,
                              handle=self.handle)
        shape = (1, H, S, D)
        stride = (S * H * D, D, H * D, 1)  # b s h d in memory
        self.tq, self.tk, self.tv = (graph.tensor(name=n, dim=shape, stride=stride, data_type=e4m3)
                                     for n in ("q", "k", "v"))
        scalar = dict(dim=(1, 1, 1, 1), stride=(1, 1, 1, 1), data_type=f32)
        self.scalars = [graph.tensor(name=n, **scalar) for n in ("dq", "dk", "dv", "ds", "ss", "so")]
        extra = {}
        self.padded = padded
        if padded:
            i32 = dict(dim=(1, 1, 1, 1), stride=(1, 1, 1, 1), data_type=cudnn.data_type.INT32)
            self.tsq, self.tskv = graph.tensor(name="seq_q", **i32), graph.tensor(name="seq_kv", **i32)
            extra = dict(use_padding_mask=True, seq_len_q=self.tsq, seq_len_kv=self.tskv)
            self.seq = torch.full((1, 1, 1, 1), S, dtype=torch.int32, device="cuda")
        o, _, amax_s, amax_o = graph.sdpa_fp8(self.tq, self.tk, self.tv, *self.scalars, is_inference=True,
                                              attn_scale=1.0 / math.sqrt(D), use_causal_mask=False,
                                              name="sdpa", **extra)
        o.set_output(True).set_dim(shape).set_stride(stride).set_data_type(e4m3)
        for a in (amax_s, amax_o):
            a.set_output(True).set_dim((1, 1, 1, 1)).set_stride((1, 1, 1, 1)).set_data_type(f32)
        self.o, self.amax_s, self.amax_o = o, amax_s, amax_o
        graph.validate()
        graph.build_operation_graph()
        graph.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
        graph.check_support()
        graph.build_plans()
        self.graph = graph
        self.workspace = torch.empty(graph.get_workspace_size(), dtype=torch.uint8, device="cuda")
        self.out = torch.empty(1, S, H, D, dtype=torch.float8_e4m3fn, device="cuda")
        self.amax_buf = torch.empty(2, 1, 1, 1, 1, device="cuda")
        self.one = torch.ones(1, 1, 1, 1, device="cuda")
        self.scale_s = torch.full((1, 1, 1, 1), 448.0, device="cuda")
        self.descale_s = 1 / self.scale_s

    @staticmethod
    def quantize(x, fixed=None):
        if fixed is not None:
            return x.to(torch.float8_e4m3fn), torch.full((1, 1, 1, 1), 1.0, device=x.device)
        amax = x.abs().amax().float().clamp(min=1e-6)
        scale = 448.0 / amax
        return (x.float() * scale).to(torch.float8_e4m3fn), (1 / scale).reshape(1, 1, 1, 1)

    def run(self, q, k, v):
        (q8, dq), (k8, dk), (v8, dv) = q, k, v
        scale_o = (1 / dv).reshape(1, 1, 1, 1)  # |O| <= amax(v)
        self.cudnn.set_stream(self.handle, torch.cuda.current_stream().cuda_stream)
        pack = {self.tsq: self.seq, self.tskv: self.seq} if self.padded else {}
        self.graph.execute({**pack, self.tq: q8, self.tk: k8, self.tv: v8, self.scalars[0]: dq, self.scalars[1]: dk,
                            self.scalars[2]: dv, self.scalars[3]: self.descale_s, self.scalars[4]: self.scale_s,
                            self.scalars[5]: scale_o, self.o: self.out, self.amax_s: self.amax_buf[0],
                            self.amax_o: self.amax_buf[1]}, self.workspace, handle=self.handle)
        return self.out, dv

    def __call__(self, q, k, v):
        fixed = 1.0 if self.fixed_qk else None
        out, descale_o = self.run(self.quantize(q, fixed), self.quantize(k, fixed), self.quantize(v))
        return out.float() * descale_o.reshape(1, 1, 1, 1)


def block_probe(args):
    import torch._dynamo.config as dc
    import torch._inductor.config as ic

    from bench.probes.aot_block import block, inputs
    dc.specialize_float = True
    import torch.fx.experimental._config as shape_config
    shape_config.use_duck_shape = False
    if args.cdt:
        ic.coordinate_descent_tuning = True
    fp8 = args.mode == "fp8"
    blk = block(3840, 30, "cuda", torch.bfloat16, 0, fp8)
    with torch.inference_mode():
        x = inputs(args.tokens, 3840, 30, "cuda", torch.bfloat16, 1)
        eager_ms = cuda_ms(lambda: blk(*x), repeats=10, rounds=3)
        ref = blk(*x)
        blk.compile(fullgraph=True, dynamic=True)
        began = time.perf_counter()
        out = blk(*x)
        torch.cuda.synchronize()
        compile_s = time.perf_counter() - began
        ms = cuda_ms(lambda: blk(*x), repeats=30)
        total, rows = top_kernels(lambda: blk(*x))
        emit(section="block", mode=args.mode, cdt=args.cdt, tokens=args.tokens, eager_ms=round(eager_ms, 3),
             compiled_ms=round(ms, 3), compile_s=round(compile_s, 1), kernel_ms=round(total, 3),
             err_vs_eager=rel(out, ref), kernels=[(round(a, 4), c, k) for a, c, k in rows])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=("attention", "block"))
    p.add_argument("--mode", default="bf16")
    p.add_argument("--cdt", action="store_true")
    p.add_argument("--tokens", type=int, default=4224)
    args = p.parse_args()
    print(torch.__version__, torch.cuda.get_device_name(), flush=True)
    attention(args) if args.what == "attention" else block_probe(args)


if __name__ == "__main__":
    main()
