"""Prompt encoding for Z-Image, padded to a few bucket lengths instead of always 512 tokens.

The recipe is the pipeline's own (`ZImagePipeline._encode_prompt`): the Qwen3 chat template, the
tokenizer's padding and truncation at 512 tokens, the text encoder's `hidden_states[-2]`, the padding
stripped afterwards. The only change is the padded length: the smallest bucket that holds the prompt
(64/128/256/512) instead of 512 every time, so a short prompt costs the text encoder an eighth of the
work while the number of shapes it sees stays four, few enough to record each as a CUDA graph
(`capture_graphs`). The embeddings of the prompt's own tokens don't depend on the padding (causal
attention, padding masked), so the image is the same: on a CPU the tiny model's pixels are identical
to the pipeline's own path (tests/test_engine_gpu.py); a kernel that blocks the work differently at
another length can move the last bit of a float, no more.

The transformer never sees these buckets: it gets the embeddings with the padding stripped and pads
the caption to a multiple of 32 itself, so it sees 16 caption lengths (32..512); the engine compiles
its blocks with a dynamic sequence length so that none of them recompiles while serving.
"""

from __future__ import annotations

import torch

MAX_TOKENS = 512  # the pipeline's max_sequence_length: longer prompts are cut here, as diffusers does
BUCKETS = (64, 128, 256, 512)
CAPTION_MULTIPLE = 32  # the transformer pads caption tokens to a multiple of this (SEQ_MULTI_OF)


def bucket_for(tokens: int, buckets: tuple[int, ...] = BUCKETS) -> int:
    """The padded length for a prompt of `tokens` tokens: the smallest bucket that holds it."""
    for bucket in buckets:
        if tokens <= bucket:
            return bucket
    return buckets[-1]  # longer prompts were truncated to MAX_TOKENS (= the last bucket)


def caption_length(tokens: int) -> int:
    """How many caption tokens the transformer processes for a prompt of `tokens` tokens."""
    tokens = max(1, min(tokens, MAX_TOKENS))
    return -(-tokens // CAPTION_MULTIPLE) * CAPTION_MULTIPLE


def caption_lengths(max_tokens: int = MAX_TOKENS) -> list[int]:
    """Every caption length the transformer can see: 32, 64, ... 512."""
    return list(range(CAPTION_MULTIPLE, caption_length(max_tokens) + 1, CAPTION_MULTIPLE))


class PromptEncoder:
    """Turns a prompt into the `[tokens, hidden]` embedding the pipeline takes as `prompt_embeds`."""

    def __init__(self, tokenizer, text_encoder, device: torch.device, *,
                 buckets: tuple[int, ...] = BUCKETS, max_tokens: int = MAX_TOKENS):
        if sorted(buckets) != list(buckets) or buckets[-1] != max_tokens:
            raise ValueError(f"buckets must be ascending and end at max_tokens ({max_tokens}): {buckets}")
        self.tokenizer, self.text_encoder, self.device = tokenizer, text_encoder, device
        self.buckets, self.max_tokens = tuple(buckets), max_tokens
        self._graphs: dict[int, tuple] = {}  # bucket -> (CUDAGraph, input_ids, mask, output)

    def template(self, prompt: str) -> str:
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True,
            enable_thinking=True,
        )

    def token_count(self, prompt: str) -> int:
        """Tokens the text encoder reads for this prompt (template included, at most max_tokens)."""
        text = self.template(prompt)
        return len(self.tokenizer(text, truncation=True, max_length=self.max_tokens).input_ids)

    def tokenize(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask), each [1, bucket], exactly as the pipeline tokenizes with
        max_sequence_length = the bucket."""
        text = self.template(prompt)
        count = len(self.tokenizer(text, truncation=True, max_length=self.max_tokens).input_ids)
        inputs = self.tokenizer(text, padding="max_length", max_length=bucket_for(count, self.buckets),
                                truncation=True, return_tensors="pt")
        return inputs.input_ids, inputs.attention_mask.bool()

    def _hidden(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(input_ids=input_ids, attention_mask=mask, output_hidden_states=True,
                                 use_cache=False).hidden_states[-2]

    @torch.inference_mode()
    def capture_graphs(self) -> None:
        """Record the text encoder once per bucket as a CUDA graph. Eager, its 36 layers are bound by
        kernel launches (~34 ms for a 128-token prompt on an H200, for ~3 ms of GPU work); a replay
        launches them all at once. Same kernels, so the same numbers as eager at that bucket."""
        assert self.device.type == "cuda", "CUDA graphs need a CUDA device"
        graphs = {}
        for bucket in self.buckets:
            input_ids = torch.full((1, bucket), self.tokenizer.pad_token_id or 0, dtype=torch.long,
                                   device=self.device)
            mask = torch.ones((1, bucket), dtype=torch.bool, device=self.device)
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):  # warm up off the capture (cuBLAS workspaces, lazy init)
                for _ in range(2):
                    self._hidden(input_ids, mask)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                output = self._hidden(input_ids, mask)
            graphs[bucket] = (graph, input_ids, mask, output)
        # Check a padded prompt against eager: the graph bakes in every decision made on the host
        # while recording, and only device-side work may depend on the mask.
        self._graphs = {}
        eager = self.encode("a")
        self._graphs = graphs
        graphed = self.encode("a")
        if not torch.equal(graphed, eager):
            self._graphs = {}
            raise RuntimeError("the text encoder's CUDA graph disagrees with eager; not using it")

    @property
    def graphed(self) -> bool:
        return bool(self._graphs)

    @torch.inference_mode()
    def encode(self, prompt: str) -> torch.Tensor:
        """The prompt's embedding, [tokens, hidden], on the device, padding stripped."""
        input_ids, mask = self.tokenize(prompt)
        recorded = self._graphs.get(input_ids.shape[1])
        if recorded is not None:
            graph, graph_ids, graph_mask, output = recorded
            graph_ids.copy_(input_ids, non_blocking=True)
            graph_mask.copy_(mask, non_blocking=True)
            graph.replay()
            hidden = output
        else:
            hidden = self._hidden(input_ids.to(self.device), mask.to(self.device))
        # hidden[0][mask[0]] as the pipeline does, but from the mask on the CPU: a boolean index on the
        # GPU would wait for the text encoder to finish before the transformer's work can be queued.
        # A copy either way: the next replay of a graph overwrites its output.
        kept = mask[0].nonzero().squeeze(1)
        start, stop = int(kept[0]), int(kept[-1]) + 1
        if stop - start == len(kept):  # one run of tokens (right or left padding)
            return hidden[0, start:stop].clone()
        return hidden[0].index_select(0, kept.to(hidden.device))

    def prompt_for_caption(self, caption: int) -> str:
        """A prompt whose caption the transformer pads to exactly `caption` tokens (for warm-up)."""
        if caption_length(self.token_count("")) == caption:
            return ""
        low, high = 1, 4 * self.max_tokens  # repeats of " a": token count is monotone in them
        while low < high:
            mid = (low + high) // 2
            if caption_length(self.token_count("a" + " a" * mid)) < caption:
                low = mid + 1
            else:
                high = mid
        prompt = "a" + " a" * low
        if caption_length(self.token_count(prompt)) != caption:
            raise ValueError(f"no prompt makes a caption of {caption} tokens with this tokenizer")
        return prompt
