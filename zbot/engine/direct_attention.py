"""diffusers' Attention, calling its processor straight (imported only where diffusers is)."""

from __future__ import annotations

from diffusers.models.attention_processor import Attention


class DirectAttention(Attention):
    """Attention that calls its processor with Z-Image's arguments, without first inspecting the
    processor's signature on every call, as diffusers' does: that inspection leaves a guard on a code
    object in the compiled code, which can't be saved ahead of time (zbot/engine/ahead.py). A class at module
    level, so that saved code can name it."""

    def forward(self, hidden_states, attention_mask=None, freqs_cis=None):
        return self.processor(self, hidden_states, None, attention_mask, freqs_cis)
