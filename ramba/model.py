"""RambaModel: every architecture of the family from the same parts (see ramba/config.py for the layout).

Three entry points share one code path (`_run`), so they agree by construction and the consistency tests
check the rest: forward(ids) for training (no state), prefill(ids, state) in segments of any size, and
decode(token, state).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from ramba.attention import AttentionMixer
from ramba.config import RambaConfig
from ramba.encoder import ChunkEncoder
from ramba.errors import BadInputError
from ramba.hsa import HSALayer, Retrieval, rescore, scores_for_indices, select_chunks_noisy
from ramba.layers import RMSNorm, SwiGLU
from ramba.mamba2 import Mamba2Mixer
from ramba.ops import get_ops, resolve_backend
from ramba.profile import section
from ramba.offload import make_chunk_memory
from ramba.state import RambaState

ENC_BLOCK_TOKENS = 1 << 16   # tokens per chunk-encoder call: bounds activation memory on long prefills


class Block(nn.Module):
    """x + mixer(RMSNorm(x)) [+ SwiGLU MLP sublayer for attention mixers]."""

    def __init__(self, cfg: RambaConfig, mixer: nn.Module, with_mlp: bool):
        super().__init__()
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mixer = mixer
        if with_mlp:
            self.mlp_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
            self.mlp = SwiGLU(cfg.d_model, cfg.mlp_width)
        else:
            self.mlp = None

    def forward(self, x, state=None, pos0: int = 0, segment=None):
        x = x + self.mixer(self.norm(x), state, pos0, segment)
        if self.mlp is not None:
            x = x + self.mlp(self.mlp_norm(x))
        return x


def make_block(cfg: RambaConfig) -> Block:
    if cfg.uses_mamba:
        return Block(cfg, Mamba2Mixer(cfg), with_mlp=False)
    window = cfg.swa_window if cfg.arch == "swa-hsa" else None
    return Block(cfg, AttentionMixer(cfg, window), with_mlp=True)


class RambaModel(nn.Module):
    def __init__(self, cfg: RambaConfig):
        super().__init__()
        if not isinstance(cfg, RambaConfig):
            raise BadInputError("RambaModel needs a RambaConfig (use RambaConfig.from_preset(name))")
        self.cfg = cfg
        self.ops_backend: str | None = None        # None: triton on CUDA, reference on CPU (RAMBA_OPS wins)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.lower = nn.ModuleList(make_block(cfg) for _ in range(cfg.n_lower))
        if cfg.has_hsa:
            self.encoder = ChunkEncoder(cfg)
            self.retrieval = Retrieval(cfg)
            self.hsa = nn.ModuleList(HSALayer(cfg, with_mlp=cfg.arch == "swa-hsa") for _ in range(cfg.n_hsa))
        self.upper = nn.ModuleList(make_block(cfg) for _ in range(cfg.n_upper))
        self.norm_f = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self._init_weights()
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    # ---------------------------------------------------------------- setup
    def _init_weights(self):
        cfg = self.cfg
        std = cfg.init_std
        nn.init.normal_(self.embed.weight, std=std)
        nn.init.normal_(self.lm_head.weight, std=std)
        n_res = max(1, cfg.n_lower + cfg.n_upper)
        for blk in list(self.lower) + list(self.upper):
            # residual-branch outputs scaled down with depth (as Mamba/GPT-2 do for pre-norm stacks)
            for name, p in blk.named_parameters():
                if name.endswith(("out_proj.weight", "o_proj.weight", "down_proj.weight")):
                    with torch.no_grad():
                        p /= math.sqrt(n_res)
        if cfg.has_hsa:
            # HSA / retrieval / chunk linears ~ N(0, init_std); encoder linears keep the default, biases zeroed
            mods = [self.retrieval.r_proj, self.encoder.lmk_proj, self.encoder.k_proj, self.encoder.v_proj]
            for layer in self.hsa:
                mods += [layer.q_proj, layer.o_proj]
            for m in mods:
                nn.init.normal_(m.weight, std=std)
            for m in self.encoder.layers.modules():
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)

    def set_ssd_impl(self, impl: str) -> None:
        """"auto" (mamba-ssm on CUDA when installed), "torch" (our chunked SSD) or "mamba_ssm"."""
        if impl not in ("auto", "torch", "mamba_ssm"):
            raise BadInputError(f"unknown ssd impl {impl!r}; use auto, torch or mamba_ssm")
        for m in self.modules():
            if isinstance(m, Mamba2Mixer):
                m.ssd_impl = impl

    def ops(self, device: torch.device):
        return get_ops(resolve_backend(self.ops_backend, device.type))

    @property
    def blocks(self) -> list[Block]:
        return list(self.lower) + list(self.upper)

    # ---------------------------------------------------------------- public API
    def forward(self, ids: torch.Tensor, mamba_segment: int | None = None, hsa_enabled: bool = True,
                return_aux: bool = False, forced_indices: torch.Tensor | None = None, reset_phase: int = 0):
        """ids [B, T] int64 -> logits [B, T, V] (and aux with return_aux).

        mamba_segment: None = the config's value, 0 = no resets. reset_phase: resets fall at positions
        p >= 1 with p % mamba_segment == reset_phase (see reset_phase_for). forced_indices [B, T, Hkv, K]
        replaces the selection (oracle control). aux: indices/weights/scores [B, T, Hkv, K], landmarks
        [B, C, Hkv, dr], queries (the retrieval queries r) [B, T, Hkv, dr], mem_k, mem_v.
        """
        self._check_ids(ids)
        seg = self.cfg.mamba_segment if mamba_segment is None else mamba_segment
        logits, aux = self._run(ids, None, seg, hsa_enabled, forced_indices, "all", reset_phase)
        return (logits, aux) if return_aux else logits

    def reset_phase_for(self, prompt_length: int | None) -> int:
        """The reset phase that puts the last reset before a prompt of this length exactly cfg.reset_tail tokens
        before its end (0, the absolute grid, when the length is unknown or the config has no reset_tail)."""
        cfg = self.cfg
        if not (cfg.mamba_segment and cfg.reset_tail and prompt_length):
            return 0
        return (int(prompt_length) - cfg.reset_tail) % cfg.mamba_segment

    def allocate_state(self, batch_size: int = 1, device=None, dtype=None,
                       prompt_length: int | None = None, memory: str = "gpu", memory_dtype=None,
                       **memory_options) -> RambaState:
        """A fresh state. prompt_length (when known) anchors the reset grid to the prompt's end and presizes
        the chunk memory. memory: "gpu" (the compute device), "host" or "disk" (ramba/offload.py, which
        takes memory_options); memory_dtype: the chunk memory's dtype (default: the state's)."""
        cfg = self.cfg
        p = self.embed.weight
        device = p.device if device is None else torch.device(device)
        dtype = p.dtype if dtype is None else dtype
        layers = [blk.mixer.allocate_state(batch_size, device, dtype) for blk in self.blocks]
        state = RambaState(batch_size=batch_size, layers=layers, reset_phase=self.reset_phase_for(prompt_length))
        if cfg.has_hsa:
            state.memory = make_chunk_memory(memory, batch_size, cfg, device, memory_dtype or dtype,
                                             capacity_tokens=prompt_length, **memory_options)
            state.chunk_buffer = torch.zeros(batch_size, cfg.chunk_size, cfg.d_model, device=device, dtype=dtype)
        return state

    @torch.no_grad()
    def prefill(self, ids: torch.Tensor, state: RambaState, logits: str = "all"):
        """Feed ids [B, T] (any T >= 1) after what `state` holds; returns (logits, state).

        logits="all": [B, T, V]. logits="last": [B, 1, V], and with mamba_segment set the upper stack skips
        every token before the last reset boundary of the call (exact: see docs/contracts.md). logits="none":
        None, for a call whose logits nobody reads (a long prompt's middle pieces): the upper stack runs only
        after the last boundary at or before the call's end, so a call ending on a boundary runs no retrieval
        and no upper stack at all (prefill_stream cuts a long prompt so).
        """
        self._check_ids(ids)
        if logits not in ("all", "last", "none"):
            raise BadInputError(f"prefill logits must be 'all', 'last' or 'none', got {logits!r}")
        if not isinstance(state, RambaState) or state.batch_size != ids.shape[0]:
            raise BadInputError("prefill needs a RambaState from model.allocate_state(batch_size=ids.shape[0])")
        out, _ = self._run(ids, state, self.cfg.mamba_segment, True, None, logits, state.reset_phase)
        return out, state

    @property
    def reset_spacing(self) -> int | None:
        """Tokens between Mamba resets at inference, or None (no Mamba mixers, or no resets)."""
        return (self.cfg.mamba_segment or None) if self.cfg.uses_mamba else None

    def last_reset(self, reset_phase: int, after: int, end: int) -> int | None:
        """The largest Mamba reset position p with after < p <= end (absolute positions, resets at
        reset_phase mod mamba_segment), or None (none there, or the model has no resets)."""
        seg = self.reset_spacing
        if not seg:
            return None
        shift = (seg - reset_phase % seg) % seg                  # resets at positions p with (p + shift) % seg == 0
        p = ((end + shift) // seg) * seg - shift
        return p if p > after else None

    def feed_to_boundary(self, pieces, state: RambaState) -> torch.Tensor | None:
        """Feed prompt pieces (ids [B, t] each) after what `state` holds, every call ending on a Mamba reset
        boundary with logits="none" (the lower stack and the chunk encoder only); -> the tokens after the last
        boundary, not yet fed ([B, t'] or None): the caller passes them on with the next piece. Without resets
        every piece runs in full and nothing is held back."""
        carry = None
        for piece in pieces:
            ids = piece if carry is None else torch.cat([carry, piece], dim=1)           # [B, t]
            carry = None
            stop = self.last_reset(state.reset_phase, state.pos, state.pos + ids.shape[1])
            if stop is None:                    # no boundary in this piece: no resets, or a short piece
                if self.reset_spacing:
                    carry = ids                 # wait for one (at most a reset spacing more)
                else:
                    self.prefill(ids, state, logits="none")
                continue
            n = stop - state.pos
            self.prefill(ids[:, :n], state, logits="none")
            carry = ids[:, n:] if n < ids.shape[1] else None
        return carry

    def prefill_stream(self, pieces, state: RambaState):
        """Feed an iterable of prompt pieces (ids [B, t] each) after what `state` holds; -> (last logits
        [B, 1, V], state). All but the last piece go through feed_to_boundary; the last, with the tokens held
        back, runs with logits="last". So a long prompt runs retrieval and the upper stack once, in calls of at
        most a piece plus one reset spacing."""
        it = iter(pieces)
        last = next(it, None)
        if last is None:
            raise BadInputError("prefill_stream: empty prompt")

        def all_but_last():
            nonlocal last
            for piece in it:
                yield last
                last = piece

        tail = self.feed_to_boundary(all_but_last(), state)
        ids = last if tail is None else torch.cat([tail, last], dim=1)
        return self.prefill(ids, state, logits="last")

    @torch.no_grad()
    def decode(self, token: torch.Tensor, state: RambaState):
        """token [B] -> (logits [B, V], state)."""
        if token.dim() != 1:
            raise BadInputError(f"decode takes token ids of shape [B], got {tuple(token.shape)}")
        out, state = self.prefill(token[:, None], state)
        return out[:, 0], state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())     # tied weights counted once

    def save_pretrained(self, path) -> None:
        from ramba.checkpoint import save_pretrained
        save_pretrained(self, path)

    @classmethod
    def from_pretrained(cls, path_or_preset: str, device="cpu", dtype=None) -> "RambaModel":
        from ramba.checkpoint import from_pretrained
        return from_pretrained(path_or_preset, device=device, dtype=dtype)

    # ---------------------------------------------------------------- internals
    def _check_ids(self, ids) -> None:
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype not in (torch.int64, torch.int32):
            raise BadInputError("ids must be an int64 tensor of shape [B, T]")
        if ids.shape[1] == 0:
            raise BadInputError("ids must hold at least one token")
        if ids.device.type != "meta" and (int(ids.min()) < 0 or int(ids.max()) >= self.cfg.vocab_size):
            raise BadInputError(f"token ids must lie in [0, {self.cfg.vocab_size})")

    def _encode(self, h: torch.Tensor):
        """h [B, n*S, d] -> landmarks [B, n, Hkv, dr], k, v [B, n*S, Hkv, dh] (blocked over chunks)."""
        cfg = self.cfg
        B, L, d = h.shape
        S = cfg.chunk_size
        n = L // S
        hc = h.reshape(B, n, S, d)
        per = max(1, ENC_BLOCK_TOKENS // (S * B))
        Hkv = cfg.hsa_kv_heads
        if n == 0:
            e = h.new_zeros(B, 0, Hkv, cfg.hsa_head_dim)
            return h.new_zeros(B, 0, Hkv, cfg.retrieval_dim // Hkv), e, e.clone()
        lmks, ks, vs = [], [], []
        for c0 in range(0, n, per):
            m = min(per, n - c0)
            lmk, k, v = self.encoder(hc[:, c0:c0 + m].reshape(B * m, S, d))     # rows ordered (b, chunk)
            lmks.append(lmk.view(B, m, *lmk.shape[1:]))                        # [B, m, Hkv, dr]
            ks.append(k.reshape(B, m * S, *k.shape[2:]))                       # [B, m*S, Hkv, dh]
            vs.append(v.reshape(B, m * S, *v.shape[2:]))
        if len(lmks) == 1:
            return lmks[0], ks[0], vs[0]
        return torch.cat(lmks, dim=1), torch.cat(ks, dim=1), torch.cat(vs, dim=1)

    def _append(self, state: RambaState, h: torch.Tensor) -> None:
        with section("encoder"):
            enc = self._encode(h)
        with section("transfers"):          # offloaded tiers: the (async) write-out
            state.memory.append(*enc)

    def _update_memory(self, h: torch.Tensor, state: RambaState) -> None:
        """Append every chunk completed by h [B, T, d] to the memory; keep the rest in the chunk buffer."""
        S = self.cfg.chunk_size
        T = h.shape[1]
        buf, n_buf, i = state.chunk_buffer, state.buffer_len, 0
        if n_buf:
            take = min(S - n_buf, T)
            buf[:, n_buf:n_buf + take] = h[:, :take]
            n_buf += take
            i = take
            if n_buf == S:
                self._append(state, buf.to(h.dtype))
                n_buf = 0
        n_full = (T - i) // S
        step = max(1, ENC_BLOCK_TOKENS // S) * S
        for c0 in range(i, i + n_full * S, step):
            self._append(state, h[:, c0:min(c0 + step, i + n_full * S)])
        i += n_full * S
        if i < T:
            buf[:, n_buf:n_buf + T - i] = h[:, i:]
            n_buf += T - i
        state.buffer_len = n_buf

    def _layer_state(self, state, j):
        return None if state is None else state.layers[j]

    def _run(self, ids, state, segment, hsa_enabled, forced_indices, logits_mode, reset_phase=0):
        cfg = self.cfg
        B, T = ids.shape
        S = cfg.chunk_size
        pos0 = 0 if state is None else state.pos
        ops = self.ops(ids.device)
        # Mamba mixers see positions shifted so that the resets (at p % segment == reset_phase) fall on
        # multiples of the segment; attention mixers keep true positions (RoPE).
        shift = (segment - reset_phase % segment) % segment if (segment and cfg.uses_mamba) else 0
        mixer = "mamba2" if cfg.uses_mamba else "attention"
        x = self.embed(ids)                                                    # [B, T, d]
        for j, blk in enumerate(self.lower):
            with section(mixer):
                x = blk(x, self._layer_state(state, j), pos0 + shift, segment)
        # With resets, upper-stack outputs before the last boundary cannot reach later tokens (chunk memory
        # comes from the lower stack): skip them when only the last logits are wanted.
        start = 0
        if logits_mode in ("last", "none") and segment and cfg.uses_mamba:
            m0 = pos0 + shift
            # "last" needs the last token's logits: from the boundary at or before it. "none" needs only the
            # state carried into the next call: from the boundary at or before the call's end (a call that ends
            # on a boundary hands the next one a reset, so its upper stack has nothing to do)
            end = m0 + T - (1 if logits_mode == "last" else 0)
            start = min(T, max(0, (end // segment) * segment - m0))
        aux: dict = {}
        use_hsa = cfg.has_hsa and hsa_enabled
        if start == T:                  # logits="none" ending on a reset boundary: the lower stack's part only
            if use_hsa and state is not None and state.memory is not None:
                self._update_memory(x, state)
            if state is not None:
                state.pos += T
            return None, aux
        if use_hsa:
            memory = None if state is None else state.memory
            if memory is None:
                lmk, mem_k, mem_v = self._encode(x[:, :(T // S) * S])
                lmk_dtype = lmk.dtype
            else:
                self._update_memory(x, state)
                lmk_dtype = memory.dtype
            r = self.retrieval.queries(x[:, start:]).to(lmk_dtype)             # [B, T', Hkv, dr]
            one = (T - start) == 1
            if forced_indices is not None:
                lmk = lmk if memory is None else memory.landmarks()
                indices, scores = scores_for_indices(r, lmk, forced_indices[:, start:], S, pos0 + start)
            elif self.training and cfg.select_noise > 0:
                lmk = lmk if memory is None else memory.landmarks()
                indices = select_chunks_noisy(r, lmk, cfg.topk, S, pos0 + start, cfg.select_noise)
                scores = rescore(r, lmk, indices)
            else:
                select = ops.select_chunks_decode if one else ops.select_chunks
                with section("selection"):
                    if memory is None:
                        indices, scores = select(r, lmk, cfg.topk, S, pos0 + start)
                    else:
                        indices, scores = memory.select(select, r, cfg.topk, S, pos0 + start)
                if torch.is_grad_enabled() and (r.requires_grad or (memory is None and lmk.requires_grad)):
                    scores = rescore(r, lmk if memory is None else memory.landmarks(), indices)
            scores = self.retrieval.biased(scores)
            weights = ops.chunk_weights(scores, cfg.fusion)                    # [B, T', Hkv, K] fp32
            attend = ops.hsa_attend_decode if one else ops.hsa_attend
            aux.update(indices=indices, weights=weights, scores=scores)
            hsa_indices = indices
            if memory is not None and memory.resident:
                mem_k, mem_v = memory.keys_values()
            elif memory is not None:
                # offloaded: the selected chunks only, once per call, shared by every HSA layer; the slots
                # then index the gathered set (same results: hsa_attend is per slot)
                with section("transfers"):
                    mem_k, mem_v, hsa_indices = memory.gather(indices)
            if memory is None:
                aux.update(landmarks=lmk, mem_k=mem_k, mem_v=mem_v, queries=r)
        x = x[:, start:]
        pos_up = pos0 + start
        j = cfg.n_lower
        per = cfg.upper_per_hsa
        for g in range(cfg.n_hsa if cfg.has_hsa else 1):
            if use_hsa:
                with section("hsa"):
                    x = self.hsa[g](x, mem_k, mem_v, hsa_indices, weights, attend)
            for blk in self.upper[g * per:(g + 1) * per]:
                with section(mixer):
                    x = blk(x, self._layer_state(state, j), pos_up + shift, segment)
                j += 1
        if state is not None:
            state.pos += T
        if logits_mode == "none":
            return None, aux
        if logits_mode == "last":
            x = x[:, -1:]
        return self.lm_head(self.norm_f(x)), aux
