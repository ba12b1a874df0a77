"""A dilated residual 1-D convolution encoder for sequences (B, C, T), as in TS2Vec (Yue et al. 2022).

    x (B, C, T) --Linear per time step--> (B, T, hidden)      the input projection
                 [timestamp mask: masked steps set to 0]       (only when an objective passes one)
                 --depth blocks of width hidden, 1 to width out_dim--> (B, out_dim, T)
                 --dropout--> (B, T, out_dim)                  one vector per input time step

Block i has two "same"-padded convolutions of dilation 2**i with a residual connection, so the
output keeps the input's time resolution and every output step sees ``receptive_field`` input
steps centred on it. ``embed`` pools over time (max by default, TS2Vec's "full series"
encoding). Long recordings can be encoded in windows with context on both sides
(``sliding_window``); with the default context (half the receptive field) the result is exactly
the whole-recording encoding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from selfsup.encoders.base import Encoder
from selfsup.errors import ConfigError

POOLS = ("max", "mean")


class SameDilatedConv1d(nn.Conv1d):
    """A stride-1 conv with odd kernel and centred zero padding: (B, c_in, T) -> (B, c_out, T).

    Taps that reach further than the sequence (dilation * j >= T) only ever read padding, so
    they are dropped before convolving: the result is the same and short windows do not pay
    for dilations of hundreds of steps. (Integer padding also keeps oneDNN's fast path, which
    ``padding="same"`` loses on this PyTorch.)
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int):
        super().__init__(c_in, c_out, kernel, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half, d = self.kernel_size[0] // 2, self.dilation[0]
        reach = min(half, (x.shape[-1] - 1) // d)          # taps on each side that can see data
        weight = self.weight[:, :, half - reach:half + reach + 1]
        return F.conv1d(x, weight, self.bias, padding=reach * d, dilation=d)


class DilatedResidualBlock(nn.Module):
    """GELU -> conv(dilation d) -> GELU -> conv(dilation d), added to the input (1x1-projected when
    the width changes). (B, c_in, T) -> (B, c_out, T)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, project: bool = False):
        super().__init__()
        self.conv1 = SameDilatedConv1d(c_in, c_out, kernel, dilation)
        self.conv2 = SameDilatedConv1d(c_out, c_out, kernel, dilation)
        self.skip = nn.Conv1d(c_in, c_out, 1) if project or c_in != c_out else nn.Identity()
        self.receptive_growth = 2 * (kernel - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.conv2(F.gelu(self.conv1(F.gelu(x))))


class DilatedConvEncoder(Encoder):
    """TS2Vec's encoder: ``depth`` blocks of ``hidden`` channels (dilations 1, 2, 4 ...), then
    one block to ``out_dim`` channels. (B, C, T) -> sequence (B, T, out_dim); ``embed`` (B, out_dim).

    The defaults (64 hidden channels, depth 10, kernel 3, 320-d output) are TS2Vec's; its
    receptive field is 8,189 steps, so on short windows every output step sees the whole window.
    """

    output_kind = "sequence"
    #: objectives may pass ``timestamp_mask`` to ``forward`` (masking on the input projection)
    accepts_timestamp_mask = True

    def __init__(self, in_channels: int, hidden: int = 64, depth: int = 10, out_dim: int = 320,
                 kernel: int = 3, dropout: float = 0.1, pool: str = "max",
                 sliding_window: int | None = None, sliding_context: int | None = None):
        super().__init__()
        if kernel % 2 != 1:
            raise ConfigError(f"dilated-conv needs an odd kernel (centred 'same' padding), got {kernel}")
        if pool not in POOLS:
            raise ConfigError(f"dilated-conv pool must be one of {POOLS}, got {pool!r}")
        if sliding_window is not None and sliding_window < 1:
            raise ConfigError(f"sliding_window must be a positive number of time steps, got {sliding_window}")
        self.input_projection = nn.Linear(in_channels, hidden)
        widths = [hidden] * depth + [out_dim]
        self.blocks = nn.ModuleList(
            DilatedResidualBlock(c_in, c_out, kernel, 2 ** i, project=i == depth)
            for i, (c_in, c_out) in enumerate(zip([hidden] + widths[:-1], widths)))
        self.dropout = nn.Dropout(dropout)
        self.pool_mode = pool
        self.embed_dim = self.feature_dim = out_dim
        #: input steps that one output step depends on (centred on it)
        self.receptive_field = 1 + sum(block.receptive_growth for block in self.blocks)
        # "same" padding: any length >= 1 gives as many output steps as input steps.
        self.min_input_length = 1
        self.sliding_window = sliding_window
        self.sliding_context = self.receptive_field // 2 if sliding_context is None else sliding_context

    # -- encoding --------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, timestamp_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C, T), timestamp_mask (B, T) bool, True = keep -> (B, T, out_dim).

        With ``sliding_window`` set, inputs longer than the window plus its context on both
        sides are encoded window by window (``encode_sliding``).
        """
        if self.sliding_window and x.shape[-1] > self.sliding_window + 2 * self.sliding_context:
            return self.encode_sliding(x, self.sliding_window, self.sliding_context, timestamp_mask)
        return self._encode(x, timestamp_mask)

    def _encode(self, x: torch.Tensor, timestamp_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.input_projection(rearrange(x, "b c t -> b t c"))          # (B, T, hidden)
        if timestamp_mask is not None:
            h = h * timestamp_mask.unsqueeze(-1).to(h.dtype)
        h = rearrange(h, "b t c -> b c t")
        for block in self.blocks:
            h = block(h)
        return self.dropout(rearrange(h, "b d t -> b t d"))

    def encode_sliding(self, x: torch.Tensor, window: int, context: int | None = None,
                       timestamp_mask: torch.Tensor | None = None, chunks_per_pass: int = 64) -> torch.Tensor:
        """Encode a long (B, C, T) recording ``window`` steps at a time -> (B, T, out_dim).

        Each window is encoded with up to ``context`` extra steps on either side (none beyond
        the recording's ends, where the convolutions pad as they do for the whole recording)
        and only its own steps are kept. Memory grows with window + 2 context, not with T;
        with context >= receptive_field // 2 the output equals ``forward`` on the whole input.
        Windows of equal padded length are batched, ``chunks_per_pass`` at a time.
        """
        context = self.sliding_context if context is None else context
        b, t = x.shape[0], x.shape[-1]
        pieces: dict[int, list[tuple[int, int, int]]] = {}  # padded length -> [(lo, hi, start)]
        for start in range(0, t, window):
            lo, hi = max(0, start - context), min(t, start + window + context)
            pieces.setdefault(hi - lo, []).append((lo, hi, start))
        out = x.new_empty(b, t, self.feature_dim)
        for group in pieces.values():
            for i in range(0, len(group), chunks_per_pass):
                part = group[i:i + chunks_per_pass]
                xs = torch.cat([x[..., lo:hi] for lo, hi, _ in part])       # (n B, C, hi - lo)
                mask = None if timestamp_mask is None else torch.cat([timestamp_mask[:, lo:hi] for lo, hi, _ in part])
                z = rearrange(self._encode(xs, mask), "(n b) t d -> n b t d", b=b)
                for zi, (lo, _, start) in zip(z, part):
                    stop = min(t, start + window)
                    out[:, start:stop] = zi[:, start - lo:stop - lo]
        return out

    # -- pooling and probes ----------------------------------------------------------------
    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, D): max (TS2Vec) or mean over time."""
        return features.amax(dim=1) if self.pool_mode == "max" else features.mean(dim=1)

    def layer_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each block's output, pooled over time the same way as ``embed``: {"block1": (B, D_1), ...}."""
        h = rearrange(self.input_projection(rearrange(x, "b c t -> b t c")), "b t c -> b c t")
        feats = {}
        for i, block in enumerate(self.blocks):
            h = block(h)
            feats[f"block{i + 1}"] = self.pool(rearrange(h, "b d t -> b t d"))
        return feats
