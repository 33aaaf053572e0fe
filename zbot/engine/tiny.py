"""A tiny, randomly initialised Z-Image pipeline for tests and CI.

It uses the real diffusers/transformers classes with toy dimensions, so every code path of the
engine (prompt encoding, chat template, rope, scheduler, VAE decode, saving and loading) runs for
real, offline, in well under a second per 64x64 image on a CPU. The images are noise-like art:
the weights are random, only their shapes and plumbing match Z-Image-Turbo.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import Qwen2Tokenizer, Qwen3Config, Qwen3Model

# Qwen2/Qwen3's pre-tokenizer split; training with the same split Qwen2Tokenizer rebuilds at load
# time keeps the learned merges valid.
_QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# Renders exactly what Qwen3's template renders for one user turn with enable_thinking=True
# (the pipeline's call); the enable_thinking=False branch is kept for fidelity.
_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}{%- endif %}"
)
# Training text: prompt-like English plus some CJK, so common words and CJK byte triples get merges.
# (Any text tokenizes anyway: the 256-byte alphabet covers every UTF-8 byte.)
_CORPUS = [
    "a red fox sitting in the snow at sunset, highly detailed, soft light, photograph",
    "a portrait of an old man with a long white beard, oil painting, dramatic lighting",
    "a cat wearing a tiny hat, studio photo, shallow depth of field, 85mm lens, bokeh",
    "a futuristic city skyline at night with neon lights and flying cars, cyberpunk style",
    "a bowl of ramen on a wooden table, steam rising, food photography, warm colors",
    "mountains reflected in a calm lake in the morning, mist, landscape, golden hour",
    "an astronaut riding a horse on the moon, digital art, trending, cinematic composition",
    "watercolor illustration of a small house in the forest, children's book, cute and cozy",
    "the quick brown fox jumps over the lazy dog; there were three green bottles and 42 birds.",
    "a close-up of a blue flower with drops of water, macro photography, sharp focus",
    "a dragon flying over a medieval castle, fantasy painting, epic scale, storm clouds",
    "a girl reading a book under a tree, anime style, spring, cherry blossoms, pastel colors",
    "一只红狐狸坐在雪地里，夕阳，高清，细节丰富。",
    "一只戴着小帽子的猫，摄影棚照片，背景虚化。",
    "山水画，云雾缭绕的山峰，中国风，水墨。",
    "夜晚的未来城市，霓虹灯，赛博朋克风格。",
]


def _train_tokenizer(num_merges: int = 384) -> Qwen2Tokenizer:
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()  # Qwen2Tokenizer applies NFC too
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=256 + num_merges,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, even unseen ones
        min_frequency=1,
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS, trainer)
    # tokenizers exposes merges only through the serialised model (pairs; "a b" strings before 0.20).
    bpe_json = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in bpe_json["merges"]]
    vocab: dict[str, int] = dict(bpe_json["vocab"])
    # Specials take the ids right after the BPE vocab in Qwen's order (endoftext, im_start, im_end);
    # left to Qwen2Tokenizer they would be numbered in set order, which is arbitrary.
    for token in _SPECIALS:
        vocab[token] = len(vocab)
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(_SPECIALS[1:]),
        chat_template=_CHAT_TEMPLATE,
        model_max_length=131072,
    )


def _init_weights(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Re-draw every parameter from `generator`, so weights depend only on the seed and the shapes.

    Matrices/kernels get N(0, 1/fan_in) (std 0.03-0.2 here): variance-preserving, so activations
    neither vanish nor blow up through the stack and the decoded image has real contrast.
    Biases are zero, 1-D scales (norm weights) are one. Sorted names make the draw order stable.
    """
    with torch.no_grad():
        for name, param in sorted(module.named_parameters(), key=lambda kv: kv[0]):
            if param.ndim >= 2:
                fan_in = param[0].numel()
                param.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=generator)
            elif name.endswith("bias"):
                param.zero_()
            else:
                param.fill_(1.0)


_REFERENCE = 100.0  # the constant channels beside each colour in the picture-keeping VAE (see below)
_CALM = 0.05  # the picture-keeping model's transformer output, scaled down: random velocities drown a picture
_LIFT = 20.0  # added after each output GroupNorm: SiLU(20 + x) = 20 + x within float32 rounding


def keep_pictures(vae: AutoencoderKL) -> AutoencoderKL:
    """Set a tiny VAE's weights (16 channels in every block, 4 norm groups) so that decode(encode(x)) is x
    averaged over 8x8 blocks: a VAE that keeps the picture, for tests of image to image and inpainting
    (with random weights the decoded image has nothing to do with the encoded one).

    Every ResNet and attention block becomes the identity (its last projection zero: the residual passes).
    The down-samplers average 2x2 pixels, the up-samplers repeat them. Each colour c travels in a group of
    four channels (c, -c, K, -K): the group's mean is exactly 0 and its variance (c^2 + K^2) / 2 barely
    depends on c when K = 100, so the output GroupNorm is a fixed scale; a bias of 20 keeps its SiLU in its
    linear range; the output convolution undoes the scale. The latent holds the block means of R, G, B in
    channels 0-2 (at almost no variance), the other channels nothing."""
    scale = _REFERENCE / math.sqrt(2)  # the GroupNorm's divisor when c is small beside K
    with torch.no_grad():
        for name, param in vae.named_parameters():
            if ".conv2." in name or ".to_out." in name:
                param.zero_()
        for sampler in [block.downsamplers[0].conv for block in vae.encoder.down_blocks if block.downsamplers] + \
                       [block.upsamplers[0].conv for block in vae.decoder.up_blocks if block.upsamplers]:
            sampler.weight.zero_()
            sampler.bias.zero_()
            for channel in range(16):
                if sampler.stride == (2, 2):  # padded right and bottom, so the top-left 2x2 is the block
                    sampler.weight[channel, channel, :2, :2] = 0.25
                else:
                    sampler.weight[channel, channel, 1, 1] = 1.0
        for conv_in in (vae.encoder.conv_in, vae.decoder.conv_in):
            conv_in.weight.zero_()
            conv_in.bias.copy_(torch.tensor([0.0, 0.0, _REFERENCE, -_REFERENCE] * 3 + [_REFERENCE, -_REFERENCE] * 2))
            for colour in range(3):
                conv_in.weight[4 * colour, colour, 1, 1] = 1.0
                conv_in.weight[4 * colour + 1, colour, 1, 1] = -1.0
        for norm in (vae.encoder.conv_norm_out, vae.decoder.conv_norm_out):
            norm.weight.fill_(1.0)
            norm.bias.fill_(_LIFT)
        # The encoder's gain undoes the pipeline's scaling factor, so that the latents of a picture have
        # about the spread of the noise, as a real VAE's do; the decoder's undoes the encoder's.
        gain = 1.0 / vae.config.scaling_factor
        for conv_out, factor in ((vae.encoder.conv_out, gain), (vae.decoder.conv_out, 1.0 / gain)):
            conv_out.weight.zero_()
            conv_out.bias.zero_()
            for colour in range(3):
                conv_out.weight[colour, 4 * colour, 1, 1] = factor * scale / 2
                conv_out.weight[colour, 4 * colour + 1, 1, 1] = -factor * scale / 2
        vae.encoder.conv_out.bias[16:] = -30.0  # log-variance at its floor: sampling adds ~3e-7
    return vae


def build_tiny_model(out_dir: str | Path, *, seed: int = 0, keeps_pictures: bool = False) -> Path:
    """Write a randomly initialised, diffusers-format Z-Image pipeline (a few MB) to out_dir,
    offline; return the path. `keeps_pictures`: its VAE gives back what it encodes (`keep_pictures`).

    Same `seed` -> byte-identical files. Load with `ZImagePipeline.from_pretrained(path)`.
    """
    out = Path(out_dir)
    tokenizer = _train_tokenizer()
    generator = torch.Generator("cpu").manual_seed(seed)
    # Constructors draw default inits from the global RNG: fork it so the caller's state is untouched,
    # and seed it anyway so nothing depends on what ran before.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder = Qwen3Model(
            Qwen3Config(
                vocab_size=len(tokenizer),
                hidden_size=64,  # = the transformer's cap_feat_dim
                intermediate_size=128,
                num_hidden_layers=3,  # the pipeline takes hidden_states[-2]: the output of layer 2
                num_attention_heads=4,
                num_key_value_heads=2,
                head_dim=16,
                max_position_embeddings=40960,
                rope_theta=1_000_000.0,
                rms_norm_eps=1e-6,
                tie_word_embeddings=True,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        )
        transformer = ZImageTransformer2DModel(
            all_patch_size=(2,),
            all_f_patch_size=(1,),
            in_channels=16,
            dim=64,
            n_layers=2,
            n_refiner_layers=2,
            n_heads=2,
            n_kv_heads=2,
            qk_norm=True,
            cap_feat_dim=64,
            rope_theta=256.0,
            t_scale=1000.0,
            # head_dim (dim / n_heads = 32) must equal sum(axes_dims), each even (pairs of rope
            # channels). axes_lens bound the position ids: axis 0 counts caption tokens (padded to
            # 32, 512 max) and then sits at cap_len + 1 for the image; axes 1/2 are patch rows/cols
            # (64 at 1024 px). The released [1536, 512, 512] covers both and costs nothing here.
            axes_dims=[8, 12, 12],
            axes_lens=[1536, 512, 512],
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            # FLUX layout: 4 blocks -> vae_scale_factor 2**3 = 8, as the pipeline assumes.
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(16, 16, 16, 16) if keeps_pictures else (8, 16, 16, 16),
            layers_per_block=1,
            norm_num_groups=4,  # must divide every channel count
            latent_channels=16,
            sample_size=1024,
            scaling_factor=0.3611,
            shift_factor=0.1159,
            use_quant_conv=False,
            use_post_quant_conv=False,
            # Kept like the real VAE (the engine may compile this path); 16k tokens at 1024 px cost ~0.2 s.
            mid_block_add_attention=True,
        )
    for model in (text_encoder, transformer, vae):
        _init_weights(model, generator)
        model.eval()
    if keeps_pictures:
        keep_pictures(vae)
        with torch.no_grad():  # a calm transformer: what is left of a picture is the schedule's doing, not noise's
            for name, param in transformer.named_parameters():
                if name.startswith("all_final_layer.") and name.endswith(".linear.weight"):
                    param.mul_(_CALM)
    # The released scheduler config: static shift 3.0.
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=False
    )
    pipe = ZImagePipeline(
        scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer
    )
    pipe.save_pretrained(out, safe_serialization=True)
    return out


def build_tiny_checker(out_dir: str | Path, *, seed: int = 0) -> Path:
    """Write a randomly initialised image classifier of the safety checker's real architecture (a ViT
    for image classification, labels normal/nsfw, as Falconsai/nsfw_image_detection) with its image
    processor, offline; return the path. Its scores are noise: for tests of the code path, not verdicts."""
    from transformers import ViTConfig, ViTForImageClassification
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    out = Path(out_dir)
    config = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       image_size=224, patch_size=16, num_labels=2, id2label={0: "normal", 1: "nsfw"},
                       label2id={"normal": 0, "nsfw": 1})
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = ViTForImageClassification(config)
    model.save_pretrained(out)
    # The checkpoint's own preprocessing: resize to 224x224, scale to 0-1, normalise with mean = std = 0.5.
    ViTImageProcessorPil(size={"height": 224, "width": 224}, image_mean=[0.5] * 3,
                         image_std=[0.5] * 3).save_pretrained(out)
    return out
