"""The transformer's image blocks compiled ahead of time: torch.compile's `aot_compile` of one block's
forward, saved in the compile-cache folder after a start has warmed up, and loaded by the next start.
A warm start then runs the image blocks without dynamo tracing them again (tracing and loading the
compiled code from the cache was ~4 s of a warm start on an H200: bench/results/).

The compiled function takes the block as an argument, so one artifact serves every image block (the
noise refiner's and the 30 main layers share a shape), and its sequence length is symbolic, so it serves
every size and caption length. Before each call its guards are checked (the argument shapes, dtypes and
block attributes it was compiled for); a call they don't admit runs torch.compile's way instead.

The artifact is only valid for the software that made it: its file name carries a key of Python, torch,
Triton, diffusers (and the source of its block and attention), torchao, zbot's compile code, the device
and the numeric mode; a start with anything else changed saves a new one. Where this torch can't compile
ahead of time, or compiling failed once, a marker file says so and starts compile the blocks just in
time, as before. An artifact that can't be read is deleted (the start's warm-up saves it again); saved
code that fails while running is dropped for the rest of the process.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SAVE_STEP = "the image blocks saved ahead of time"


def supported() -> bool:
    """This torch can save and load ahead-of-time compiled functions (2.11 behind a flag, 2.13+)."""
    try:
        from torch._dynamo import aot_compile
    except ImportError:
        return False
    compiled = getattr(aot_compile, "AOTCompiledFunction", None)
    return (hasattr(torch.compiler, "load_compiled_function") and compiled is not None
            and hasattr(compiled, "guard_check"))


class SavedCode:
    """The loaded artifact, one for all the image blocks: dropped for all of them at once."""

    def __init__(self, compiled):
        self.compiled = compiled  # an AOTCompiledFunction over type(block).forward, or None once dropped
        self.misfit_told = False  # the first refused call is logged with its reason; the rest are counted


class ImageBlockCall:
    """What an image block runs in place of its forward once compiled (installed as the module's
    `_compiled_call_impl`, where `Module.compile` puts torch.compile's): the ahead-of-time function when
    one is loaded and its guards admit the arguments, else torch.compile's just-in-time function, which
    traces on its first call (or loads from the compile cache) exactly as `block.compile()` would."""

    def __init__(self, block: torch.nn.Module):
        self.block = block
        self.jit = torch.compile(block._call_impl, fullgraph=True, dynamic=True)
        self.saved: SavedCode | None = None
        self.example: tuple[tuple, dict] | None = None  # one call's arguments, kept for a save
        self.keep_next = False
        self.misfits = 0  # calls its guards refused (then compiled just in time)

    @property
    def ahead(self):
        """The saved code this block runs, or None."""
        return self.saved.compiled if self.saved is not None else None

    def __call__(self, *args, **kwargs):
        if self.keep_next:
            self.example, self.keep_next = (args, kwargs), False
        ahead = self.ahead
        block = self.block
        # The saved code is the block's forward: where hooks were added to the block, only _call_impl
        # runs them.
        if ahead is not None and not (block._forward_pre_hooks or block._forward_hooks):
            if ahead.guard_check(block, *args, **kwargs):
                try:
                    return ahead.fn(block, *args, **kwargs)
                except torch.OutOfMemoryError:
                    raise  # the just-in-time code would need the same memory: the job's own failure
                except Exception:  # saved code that loaded but can't run here: never again this process
                    log.exception("the image blocks' ahead-of-time code failed; they are compiled just in "
                                  "time from now on")
                    self.saved.compiled = None
                    return self.jit(*args, **kwargs)
            self.misfits += 1
            if not self.saved.misfit_told:
                self.saved.misfit_told = True
                log.warning("an image block's ahead-of-time code doesn't fit a call (%s; %s); it is compiled "
                            "just in time for such calls", _shapes(args), _refusal(ahead, block, args, kwargs))
        return self.jit(*args, **kwargs)


def _refusal(ahead, block: torch.nn.Module, args: tuple, kwargs: dict) -> str:
    """Which guard refused the call, as torch words it (its own error message does the same through
    these private names); a shorter note where this torch lacks them."""
    try:
        guards = ahead._artifacts.guard_manager
        failed = guards.check_verbose(ahead.prepare_f_locals(block, *args, **kwargs))
        # Each part is a guard's code then "  # " and the source line it came from: the code says enough.
        parts = [str(part).split("  # ")[0] for part in getattr(failed, "verbose_code_parts", [failed])]
        return "refused by: " + "; ".join(parts)[:3000]
    except Exception:  # noqa: BLE001 - a diagnostic only
        return "the guard that refused it is not reported by this torch"


def _shapes(args: tuple) -> str:
    return ", ".join(str(tuple(arg.shape)) if isinstance(arg, torch.Tensor) else repr(arg) for arg in args)


def install(block: torch.nn.Module) -> ImageBlockCall:
    call = ImageBlockCall(block)
    block._compiled_call_impl = call
    return call


def calls(transformer: torch.nn.Module) -> list[ImageBlockCall]:
    return [module._compiled_call_impl for module in transformer.modules()
            if isinstance(getattr(module, "_compiled_call_impl", None), ImageBlockCall)]


def artifact_key(device: torch.device, dtype: torch.dtype, quantize: str) -> str:
    """Changes whenever the saved code could stop matching: the software, zbot's code that shapes the
    blocks, the GPU, the numeric mode."""
    from importlib import metadata

    from diffusers.models import attention_dispatch
    from diffusers.models.transformers import transformer_z_image as z_image

    from zbot import __version__

    parts = [sys.version, torch.__version__, metadata.version("diffusers"), __version__, str(dtype), quantize,
             os.environ.get("DIFFUSERS_ATTN_BACKEND", "")]
    for optional in ("triton", "torchao"):  # saved kernels; float8 tensors
        try:
            parts.append(metadata.version(optional))
        except metadata.PackageNotFoundError:
            parts.append("-")
    if device.type == "cuda":
        parts += [torch.cuda.get_device_name(device), str(torch.cuda.get_device_capability(device)),
                  str(torch.version.cuda)]
    # The code the saved function was traced through (its guards don't cover source files): ours, and
    # diffusers' block and attention (a development install keeps its version number across edits).
    here = Path(__file__).parent
    sources = [here / name for name in ("acceleration.py", "ahead.py", "direct_attention.py")]
    sources += [Path(z_image.__file__), Path(attention_dispatch.__file__)]
    parts += [hashlib.sha256(source.read_bytes()).hexdigest() for source in sources]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class AheadBlocks:
    """The ahead-of-time artifact of one engine's image blocks: read on a thread of its own while the
    weights load (`prefetch`), then loaded into the blocks (`attach`, `load`), or saved from them."""

    def __init__(self, folder: Path, key: str):
        self.calls: list[ImageBlockCall] = []
        self.path = Path(folder).expanduser().resolve() / "ahead" / f"image-block-{key}.bin"
        self.failed_marker = self.path.with_suffix(".failed")
        self.loaded = False
        self.read_s: float | None = None  # how long reading it took, on its thread
        self._reading: Future | None = None

    @property
    def wanted(self) -> bool:
        """Worth a save step: image blocks to serve, nothing saved yet, no earlier failure here."""
        return bool(self.calls) and not self.path.exists() and not self.failed_marker.exists() and supported()

    def prefetch(self, device: torch.device) -> None:
        """Start reading the artifact, if there is one, on a thread: ~1.5 s on an H200 (unpickling, the
        kernels loaded onto the GPU) that overlap the weights' loading instead of following it."""
        if self._reading is None and self.path.exists() and supported():
            reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zbot-ahead")
            self._reading = reader.submit(self._read, device)
            reader.shutdown(wait=False)

    def _read(self, device: torch.device):
        began = time.perf_counter()
        # Its guards are built as it loads, against the dispatch state of that moment: the engine draws
        # in inference mode, so load in it too (else no call would fit).
        place = torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
        with self.path.open("rb") as file, torch.inference_mode(), place:
            compiled = torch.compiler.load_compiled_function(file)
        self.read_s = time.perf_counter() - began
        return compiled

    def attach(self, transformer: torch.nn.Module) -> None:
        """The image blocks to serve (those `install` gave an ImageBlockCall)."""
        self.calls = calls(transformer)

    def load(self, device: torch.device) -> bool:
        """Put the artifact (read by `prefetch`, or now) into every image block; False (just-in-time
        compiling) if there is none or it can't be loaded (then it is deleted, and this start's warm-up
        saves it anew)."""
        if not self.calls:
            return False
        self.prefetch(device)
        if self._reading is None:
            return False
        try:
            compiled = self._reading.result()
        except Exception as error:  # cut off, or from software the key doesn't tell apart
            log.warning("could not load the image blocks' ahead-of-time code (%s); compiling them instead",
                        error, exc_info=True)
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)
            return False
        finally:
            self._reading = None
        saved = SavedCode(compiled)
        for call in self.calls:
            call.saved = saved
        self.loaded = True
        log.info("image blocks: ahead-of-time code loaded from %s (read in %.1f s)", self.path, self.read_s)
        return True

    def keep_next_call(self) -> None:
        self.calls[0].keep_next = True

    def forget_call(self) -> None:
        self.calls[0].keep_next, self.calls[0].example = False, None

    def save(self) -> None:
        """Compile the first image block ahead of time from the arguments of its last kept call (see
        `keep_next_call`), and save it. A failure is logged once and marked, not retried every start."""
        example = self.calls[0].example
        assert example is not None, "keep_next_call() and draw first"
        args, kwargs = example
        block = self.calls[0].block
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # before seconds of compiling
            _enable_aot_compile()
            with torch.inference_mode():  # as the arguments were made: the same dispatch keys
                compiled = torch.compile(type(block).forward, fullgraph=True, dynamic=True).aot_compile(
                    ((block, *args), kwargs))
            # Whole or not at all, whatever this torch's save does: a start (or another worker on the
            # same folder) must never read a file cut off by a restart or a full disk.
            partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.partial")
            try:
                compiled.save_compiled_function(str(partial))
                os.replace(partial, self.path)
            finally:
                partial.unlink(missing_ok=True)
        except OSError:  # a full disk or a read-only folder: the same next time there is room
            log.warning("could not save the image blocks' ahead-of-time code in %s", self.path.parent,
                        exc_info=True)
        except Exception as error:
            log.warning("could not compile the image blocks ahead of time; later starts compile them just "
                        "in time, as this one did", exc_info=True)
            self._mark_failed(error)
        finally:
            self.calls[0].example = None
        if self.path.exists():
            log.info("image blocks: ahead-of-time code saved to %s (%.1f MB)", self.path,
                     self.path.stat().st_size / 1e6)

    def _mark_failed(self, error: Exception) -> None:
        """This software can't save them: say so, so that later starts don't try again (best effort)."""
        try:
            self.failed_marker.parent.mkdir(parents=True, exist_ok=True)
            self.failed_marker.write_text(f"{type(error).__name__}: {error}\n"[:2000])
        except OSError:
            log.warning("could not write %s", self.failed_marker, exc_info=True)


def _enable_aot_compile() -> None:
    import torch._dynamo.config as dynamo_config

    if hasattr(dynamo_config, "enable_aot_compile"):  # torch 2.11 exposes aot_compile only with it
        dynamo_config.enable_aot_compile = True
