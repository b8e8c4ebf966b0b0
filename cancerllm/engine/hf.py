"""Batched greedy decoding on a transformers causal LM, with prefix (KV-cache) reuse.

What it does, and why it is fast:

* groups are sorted by prefix length and batched, so left padding is small;
* the header every prefix of a batch starts with (template, instruction) is encoded once, and the rest of
  each prefix once, in unpadded chunks of about ``prefill_tokens`` tokens; the suffixes of a group (the
  eight phenotype questions of one report) read single copies of the header's and the prefix's KV caches
  through shared-prefix attention (``_shared_prefix.py``), or, for architectures it does not cover, a copy
  of the prefix's cache each;
* the LM head is applied only at the last position during prefill (``logits_to_keep=1``);
* a sequence stops at EOS or as soon as its text contains a stop string (``"}"`` ends an answer set), and
  finished sequences are dropped from the batch so later steps get cheaper;
* groups of one prompt each (diagnosis) use continuous batching instead: once half of the rows have
  stopped, the next prompts are encoded and join the decoding batch, so a batch never waits for its longest
  answer (up to 500 tokens for a diagnosis); each newcomer is encoded alone, unpadded, with the causal kernel.

Positions are computed from the attention mask, so a left-padded batch sees exactly the positions of an
unpadded single sequence; padding between a prefix and its (left-padded) suffix is masked out.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from typing import Any

from ._cache import make_cache
from .base import Engine, Generation, GenerationSettings, PromptGroup

__all__ = ["HFEngine"]


class HFEngine(Engine):
    """Generation engine for any ``transformers`` causal LM (PEFT-wrapped and quantized models included)."""

    name = "hf"

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        eos = getattr(model.generation_config, "eos_token_id", None) if hasattr(model, "generation_config") else None
        eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(tokenizer.eos_token_id)
        self.eos_ids = {int(e) for e in eos_ids}
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        params = inspect.signature(base.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._logits_kw = "logits_to_keep" if "logits_to_keep" in params else (
            "num_logits_to_keep" if "num_logits_to_keep" in params else None
        )
        self._tok_text: list[str] | None = None
        #: write the KV cache into preallocated buffers instead of concatenating every step
        self.growable_cache = True
        #: keep one KV copy per prefix and let its suffixes share it (supported architectures only)
        self.shared_prefix = True
        #: prefix tokens encoded per forward pass on the shared-prefix path (smaller chunks run faster on CPU)
        self.prefill_tokens = 2048
        #: at most this many length buckets are encoded separately (each with little or no padding)
        self.suffix_buckets = 8
        #: a header shared by every prefix of a batch (template, instruction) at least this long is encoded once
        self.min_shared_header = 8
        #: prefixes that share at least this many tokens beyond the header (one report asked with different
        #: retrieved examples) encode the shared part once, as a level of its own
        self.min_shared_family = 32
        #: keys and values of encoded prefixes (header, report) kept across calls, up to this many MiB
        #: (least recently used dropped; 0 turns it off): asking about the same reports again skips encoding them
        self.prefix_cache_mb = 1024
        self._prefix_kv: _PrefixKV | None = None
        #: groups of one prompt each (diagnosis) decode with continuous batching: rows join as others finish
        self.continuous = True
        #: on a CPU in bfloat16/float16, compute the shared-prefix attention with torch.compile'd kernels
        #: (docs/engine.md: about 1.2-1.3x on the bf16 phenotype job of a 2-core AVX512-BF16 CPU, after 30-50 s
        #: of compiling on first use; needs a C++ compiler, else it falls back with a warning); default from
        #: the environment variable CANCERLLM_COMPILE_ATTENTION=1
        self.compile_attention = os.environ.get("CANCERLLM_COMPILE_ATTENTION", "").strip().lower() in (
            "1", "true", "yes", "on")
        self._base = base

    # ------------------------------------------------------------------------------------------ utils
    @property
    def device(self) -> Any:
        """The device of the model's (first) parameters, where inputs are placed."""
        return next(self.model.parameters()).device

    def _token_texts(self) -> list[str]:
        if self._tok_text is None:
            n = max(len(self.tokenizer), int(self.model.get_output_embeddings().weight.shape[0]))
            ids = list(range(n))
            self._tok_text = [self.tokenizer.decode([i]) if i < len(self.tokenizer) else "" for i in ids]
        return self._tok_text

    def _forward(self, input_ids: Any, mask: Any, positions: Any, cache: Any) -> tuple[Any, Any]:
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": mask,
            "position_ids": positions,
            "use_cache": True,
            self._cache_kw: cache,
        }
        if self._logits_kw == "logits_to_keep":
            # an index, not ``1``: the gathered hidden states are contiguous, so the LM head is one matmul
            # (the sliced view makes torch broadcast the head weight over the batch: 6x slower)
            import torch

            kwargs[self._logits_kw] = torch.tensor([input_ids.shape[1] - 1], device=input_ids.device)
        elif self._logits_kw:
            kwargs[self._logits_kw] = 1
        out = self.model(**kwargs)
        new_cache = getattr(out, "cache", None)
        if new_cache is None:
            new_cache = out.past_key_values
        return out.logits[:, -1, :], new_cache

    # ------------------------------------------------------------------------------------------ main
    def generate(
        self, groups: Sequence[PromptGroup], settings: GenerationSettings, *, progress: bool = False
    ) -> list[list[Generation]]:
        """A :class:`Generation` per suffix of each group (ids; log-probabilities with ``settings.logprobs``)."""
        import torch

        results: list[list[Generation]] = [[Generation([]) for _ in g.suffix_ids] for g in groups]
        if not groups:
            return results
        # plain prompts (empty suffix) are split so that every suffix has at least one token
        norm: list[tuple[list[int], list[list[int]]]] = []
        for g in groups:
            if not g.suffix_ids:
                raise ValueError("a PromptGroup needs at least one suffix (use [[]] for a plain prompt)")
            prefix = list(g.prefix_ids)
            sufs = [list(s) for s in g.suffix_ids]
            if any(len(s) == 0 for s in sufs):
                if len(prefix) < 1:
                    raise ValueError("empty prompt")
                last = prefix.pop()
                sufs = [[last] + s for s in sufs]
            if not prefix:  # a one-token prompt: nothing to share
                prefix, sufs = sufs[0][:1], [s[1:] or s for s in sufs]
            norm.append((prefix, sufs))

        # batch by number of sequences (suffixes), groups sorted by prefix length (longest first); groups whose
        # prefixes share more than the common header (one report's prompts with different retrieved
        # examples) stay together, ordered by their longest member, so a batch can encode the shared part once
        prefixes = [p for p, _ in norm]
        fam = _families(prefixes, _header_length(prefixes, 0) + self.min_shared_family)
        longest = {}
        for i, f in enumerate(fam):
            longest[f] = max(longest.get(f, 0), len(prefixes[i]))
        order = sorted(range(len(norm)), key=lambda i: (-longest[fam[i]], fam[i], -len(prefixes[i])))
        batches: list[list[int]] = []
        cur: list[int] = []
        cur_rows = 0
        for i in order:
            rows = len(norm[i][1])
            if cur and cur_rows + rows > max(settings.batch_size, rows):
                batches.append(cur)
                cur, cur_rows = [], 0
            cur.append(i)
            cur_rows += rows
        if cur:
            batches.append(cur)

        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=sum(len(norm[i][1]) for i in order), desc="generating", unit="prompt")
        if self._continuous_ok(norm, settings):
            # one prompt per group (diagnosis, plain prompts): rows join the decoding batch as others finish
            with torch.inference_mode():
                gen = self._run_continuous([norm[i][0] + norm[i][1][0] for i in order], settings, bar)
            for i, g in zip(order, gen):
                results[i] = [g]
            if bar is not None:
                bar.close()
            return results
        with torch.inference_mode():
            for batch in batches:
                outs = self._run_batch([norm[i] for i in batch], settings)
                for gi, seqs in zip(batch, outs):
                    results[gi] = seqs
                if bar is not None:
                    bar.update(sum(len(norm[i][1]) for i in batch))
        if bar is not None:
            bar.close()
        return results

    def _run_batch(
        self, groups: list[tuple[list[int], list[list[int]]]], settings: GenerationSettings
    ) -> list[list[Generation]]:
        n = sum(len(sufs) for _, sufs in groups)
        longest = max(len(p) for p, _ in groups) + max(len(s) for _, sufs in groups for s in sufs)
        window = attention_window(self._base.config)
        if window is not None and longest + settings.max_new_tokens > window:
            # a sliding window counts padded positions: padding between a prefix and its suffix would shift
            # it, so each row is one whole sequence (left padding only) and decodes on its own cache
            flat = [(p + s[:-1], [s[-1:]]) for p, sufs in groups for s in sufs]
            gen = [seqs[0] for seqs in self._run_batch_copied(flat, settings)]
            return self._split(groups, gen)
        if self.shared_prefix and n > len(groups):
            from ._shared_prefix import supports_shared_prefix

            if supports_shared_prefix(self._base, longest + settings.max_new_tokens):
                return self._run_batch_shared(groups, settings)
        return self._run_batch_copied(groups, settings)

    # ------------------------------------------------------------------------------------------ continuous
    def _continuous_ok(self, norm: list[tuple[list[int], list[list[int]]]], settings: GenerationSettings) -> bool:
        """Continuous batching serves groups of one prompt each on models without a sliding window."""
        from ._cache import growable_classes

        if not self.continuous or any(len(sufs) != 1 for _, sufs in norm) or growable_classes() is None:
            return False
        return attention_window(self._base.config) is None

    def _run_continuous(self, seqs: list[list[int]], settings: GenerationSettings, bar: Any) -> list[Generation]:
        """Greedy decoding of whole prompts ``seqs`` (longest first) with continuous batching: at most
        ``settings.batch_size`` rows decode together, a row leaves the batch as soon as it stops, and once
        half the batch has left, the next prompts are encoded and join it (their KV caches and the live rows'
        are laid out left-padded to one width), so a batch never waits for its longest answer.

        Each newcomer is encoded alone, unpadded and without a mask, so attention takes the model's causal
        kernel: on a CPU that ran 1.85x faster than a left-padded batch with a mask, and faster than encoding
        the shared instruction header once and the rest against it (a masked kernel again; measured 168 vs
        149 GFLOP/s on CancerLLM-Smol diagnosis prompts, the header being ~6% of each prompt)."""
        import torch

        dev = self.device
        n = len(seqs)
        gen: list[list[int]] = [[] for _ in range(n)]
        lps: list[list[float]] | None = [[] for _ in range(n)] if settings.logprobs else None
        cap = max(1, int(settings.batch_size))
        reserve = min(settings.max_new_tokens, 64) + 1
        stop = self._stop_check(settings)
        live: _Rows | None = None
        nxt_prompt = 0
        while nxt_prompt < n or live is not None:
            if nxt_prompt < n and (live is None or len(live.rows) <= cap // 2):
                take = range(nxt_prompt, min(n, nxt_prompt + cap - (0 if live is None else len(live.rows))))
                nxt_prompt = take[-1] + 1
                parts = ([] if live is None else [live]) + [self._prefill_row(seqs[i], i, reserve) for i in take]
                live = _Rows.merge(parts, reserve) if len(parts) > 1 else parts[0]
            assert live is not None
            nxt = live.logits.argmax(-1)
            step_lp = None
            if lps is not None:
                full = live.logits.float()
                step_lp = (full.gather(-1, nxt[:, None]).squeeze(-1) - torch.logsumexp(full, -1)).tolist()
            keep: list[int] = []
            for j, tok in enumerate(nxt.tolist()):
                r = live.rows[j]
                gen[r].append(tok)
                if step_lp is not None and lps is not None:
                    lps[r].append(step_lp[j])
                if not (stop(gen[r], tok) or len(gen[r]) >= settings.max_new_tokens):
                    keep.append(j)
            if bar is not None and len(keep) < len(live.rows):
                bar.update(len(live.rows) - len(keep))
            if not keep:
                live = None
                continue
            if len(keep) < len(live.rows):
                idx = torch.tensor(keep, device=dev)
                live.select(idx)
                nxt = nxt[idx]
            live.mask = torch.cat([live.mask, torch.ones((live.mask.shape[0], 1), dtype=live.mask.dtype,
                                                         device=dev)], dim=1)
            live.pos = live.pos + 1
            live.logits, live.cache = self._forward(nxt[:, None], live.mask, live.pos[:, None], live.cache)
        return [Generation(ids, lps[r] if lps is not None else None) for r, ids in enumerate(gen)]

    def _prefill_row(self, seq: list[int], row: int, reserve: int) -> _Rows:
        """Encode one whole prompt (no padding, no mask: the causal kernel) into a :class:`_Rows` of one row."""
        import torch

        dev = self.device
        ids = torch.tensor([seq], device=dev)
        pos = torch.arange(len(seq), device=dev)[None]
        logits, cache = self._forward(ids, None, pos, make_cache(reserve))
        return _Rows(rows=[row], cache=cache, mask=torch.ones_like(ids), pos=pos[:, -1], logits=logits)

    def _stop_check(self, settings: GenerationSettings) -> Any:
        """``stop(generated_ids, last_token)``: EOS, or a stop string in the text of the last tokens."""
        stop_strings = tuple(s for s in settings.stop_strings if s)
        stop_chars = {s[-1] for s in stop_strings}
        tok_text = self._token_texts() if stop_strings else None

        def stop(ids: list[int], tok: int) -> bool:
            if tok in self.eos_ids:
                return True
            if tok_text is not None and tok < len(tok_text) and any(c in tok_text[tok] for c in stop_chars):
                text = self.tokenizer.decode(ids[-8:])
                return any(x in text for x in stop_strings)
            return False

        return stop

    @staticmethod
    def _left_pad(seqs: Sequence[Sequence[int]], pad: int, width: int | None = None) -> tuple[Any, Any]:
        import torch

        width = max(len(s) for s in seqs) if width is None else width
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            if s:
                ids[r, width - len(s):] = torch.tensor(s, dtype=torch.long)
                mask[r, width - len(s):] = 1
        return ids, mask

    def _run_batch_copied(
        self, groups: list[tuple[list[int], list[list[int]]]], settings: GenerationSettings
    ) -> list[list[Generation]]:
        """Prefill the prefixes, copy each prefix's KV cache once per suffix, decode."""
        import torch

        dev = self.device
        # ---- prefill the prefixes (left padded)
        pre_ids, pre_mask = self._left_pad([p for p, _ in groups], self.pad_id)
        lp = pre_ids.shape[1]
        pre_ids, pre_mask = pre_ids.to(dev), pre_mask.to(dev)
        pre_pos = (pre_mask.cumsum(-1) - 1).clamp(min=0)
        reserve = max(len(s) for _, sufs in groups for s in sufs) + settings.max_new_tokens
        _, cache = self._forward(pre_ids, pre_mask, pre_pos, make_cache(reserve) if self.growable_cache else None)

        # ---- copy each prefix cache once per suffix
        row_group = [g for g, (_, sufs) in enumerate(groups) for _ in sufs]
        if row_group != list(range(len(groups))):
            cache.batch_select_indices(torch.tensor(row_group, device=dev))
        suf_ids, suf_mask = self._left_pad([s for _, sufs in groups for s in sufs], self.pad_id)
        mask = torch.cat([pre_mask[row_group], suf_mask.to(dev)], dim=1)
        pos_all = (mask.cumsum(-1) - 1).clamp(min=0)
        logits, cache = self._forward(suf_ids.to(dev), mask, pos_all[:, lp:], cache)
        state = {"mask": mask, "pos": pos_all[:, -1], "cache": cache}

        def compact(idx: Any) -> None:
            state["cache"].batch_select_indices(idx)
            state["mask"], state["pos"] = state["mask"][idx], state["pos"][idx]

        def step(nxt: Any) -> Any:
            m = state["mask"]
            state["mask"] = torch.cat([m, torch.ones((m.shape[0], 1), dtype=m.dtype, device=dev)], dim=1)
            state["pos"] = state["pos"] + 1
            out, state["cache"] = self._forward(nxt[:, None], state["mask"], state["pos"][:, None], state["cache"])
            return out

        return self._split(groups, self._decode(logits, suf_ids.shape[0], settings, compact, step))

    def _run_batch_shared(
        self, groups: list[tuple[list[int], list[list[int]]]], settings: GenerationSettings
    ) -> list[list[Generation]]:
        """Encode the header every prefix of the batch starts with once, each prefix's rest once, and decode
        every suffix against single copies of both (shared-prefix attention)."""
        import torch

        from ._shared_prefix import SharedPrefixState, build_shared_cache, shared_prefix_attention

        dev = self.device
        prefixes = [p for p, _ in groups]
        # levels of shared prefixes, outermost first: (keys per layer, values per layer, validity, group_of),
        # group_of mapping each group of the batch to its group in the level (None: one group for all)
        levels: list[tuple[list[Any], list[Any], Any, list[int] | None]] = []
        store = self._kv_store() if self.prefix_cache_mb > 0 else None  # the prefix cache, checked once per batch
        # ---- the header all prefixes share (template, instruction), encoded once
        head = _header_length(prefixes, self.min_shared_header)
        if head:
            keys, values, valid = self._encode_level([], [0], [prefixes[0][:head]], [0], [prefixes[0][:head]], store)
            levels.append((keys, values, valid, None))
        # ---- families: prefixes sharing more than the header (one report asked with different retrieved
        # examples) get a level of their own, that shared part encoded once per family
        start = [head] * len(prefixes)
        fam = _families(prefixes, head + self.min_shared_family)
        if len(set(fam)) < len(fam):
            members: list[list[int]] = [[] for _ in range(max(fam) + 1)]  # family ids run 0, 1, ...
            for g, f in enumerate(fam):
                members[f].append(g)
            ends = []
            for ms in members:
                ps = [prefixes[g] for g in ms]
                ends.append(min(len(os.path.commonprefix(ps)) if len(ps) > 1 else len(ps[0]),
                                min(len(x) for x in ps) - 1))  # every group keeps a token of its own
            if min(ends) > head:
                whole = [prefixes[ms[0]][:e] for ms, e in zip(members, ends)]
                keys, values, valid = self._encode_level(levels, [0] * len(whole), [w[head:] for w in whole],
                                                         [head] * len(whole), whole, store)
                levels.append((keys, values, valid, fam))
                start = [ends[f] for f in fam]
        # ---- the rest of each prefix (the report), a chunk of about prefill_tokens tokens at a time
        rests = [p[b:] for p, b in zip(prefixes, start)]
        keys, values, valid = self._encode_level(levels, list(range(len(rests))), rests, start, prefixes, store)
        levels.append((keys, values, valid, list(range(len(rests)))))
        prefix_len = [b + len(r) for b, r in zip(start, rests)]

        # ---- suffixes: each reads single copies of its prefix levels; encoded in buckets of equal length so
        # that (almost) no padding is computed, then laid out left-padded for decoding
        row_group = [g for g, (_, sufs) in enumerate(groups) for _ in sufs]
        suffixes = [s for _, sufs in groups for s in sufs]
        plan = _length_buckets([len(x) for x in suffixes], self.suffix_buckets)
        ls = max(len(x) for x in suffixes)
        own_k, own_v, suf_valid, logits = self._encode_rows(
            levels, row_group, suffixes, [prefix_len[g] for g in row_group], plan,
            capacity=ls + settings.max_new_tokens + 1)
        n = suf_valid.shape[0]
        cache = build_shared_cache([(k, v) for k, v, _, _ in levels], settings.max_new_tokens + 1)
        for layer, k, v in zip(cache.layers, own_k, own_v):
            layer.adopt(k, v, ls)  # decoding writes on after the suffixes, in the same buffers
        del own_k, own_v
        st = SharedPrefixState(cache, _prefix_levels(levels, row_group), suf_valid, ls + settings.max_new_tokens + 1)
        st.compiled = self.compile_attention
        last = {"pos": torch.tensor([prefix_len[g] + len(s) - 1 for g, s in zip(row_group, suffixes)], device=dev)}

        def compact(idx: Any) -> None:
            st.select_rows(idx)
            last["pos"] = last["pos"][idx]

        def step(nxt: Any) -> Any:
            st.append_token()
            last["pos"] = last["pos"] + 1
            out, _ = self._forward(nxt[:, None], None, last["pos"][:, None], cache)
            return out

        with shared_prefix_attention(self._base, st):
            gen = self._decode(logits, n, settings, compact, step)
        return self._split(groups, gen)

    def _encode_level(self, levels: list[tuple[list[Any], list[Any], Any, list[int] | None]], row_group: list[int],
                      seqs: list[list[int]], start: list[int], whole: list[list[int]],
                      cache: _PrefixKV | None) -> tuple[list[Any], list[Any], Any]:
        """A prefix level: keys, values (``[rows, kv_heads, W, dim]``, left padded) and validity of ``seqs``
        encoded against ``levels`` (see :meth:`_encode_rows`), in chunks of about ``prefill_tokens`` tokens.

        With the prefix cache (``cache``, from :meth:`_kv_store`), a row whose part (``seqs[r]`` from position
        ``start[r]``) and whole prefix ``whole[r]`` (every token from the start of the prompt through the
        row's end) were encoded before, by the same weights, is read from the cache instead, and encoded
        rows are stored in it."""
        import torch

        # a part is its tokens from ``start`` on, after the same context: keyed by both
        keys_of = [(b, *w) for b, w in zip(start, whole)]
        hits = [cache.get(key) if cache is not None else None for key in keys_of]
        miss = [r for r, h in enumerate(hits) if h is None]
        keys: list[Any] = []
        values: list[Any] = []
        if miss:
            sub = [seqs[r] for r in miss]
            plan = _chunks([len(x) for x in sub], self.prefill_tokens, len(sub))  # exact lengths: no padding
            keys, values, valid, _ = self._encode_rows(levels, [row_group[r] for r in miss], sub,
                                                       [start[r] for r in miss], plan)
            if cache is not None:
                width = valid.shape[1]
                for j, r in enumerate(miss):
                    n = len(seqs[r])
                    cache.put(keys_of[r], [(k[j, :, width - n :].clone(), v[j, :, width - n :].clone())
                                                for k, v in zip(keys, values)])
            if len(miss) == len(seqs):
                return keys, values, valid
        # assemble cached and newly encoded rows, each right-aligned (left padding zeroed)
        w_max = max(len(x) for x in seqs)
        first = next(h for h in hits if h is not None)
        dev = first[0][0].device
        out_k = [kv[0].new_zeros((len(seqs), kv[0].shape[0], w_max, kv[0].shape[2])) for kv in first]
        out_v = [kv[1].new_zeros((len(seqs), kv[1].shape[0], w_max, kv[1].shape[2])) for kv in first]
        valid = torch.zeros((len(seqs), w_max), dtype=torch.bool, device=dev)
        sub_w = int(keys[0].shape[2]) if miss else 0
        for r, h in enumerate(hits):
            n = len(seqs[r])
            valid[r, w_max - n :] = True
            for li in range(len(out_k)):
                if h is not None:
                    out_k[li][r, :, w_max - n :], out_v[li][r, :, w_max - n :] = h[li]
                else:
                    j = miss.index(r)
                    out_k[li][r, :, w_max - n :] = keys[li][j, :, sub_w - n : sub_w]
                    out_v[li][r, :, w_max - n :] = values[li][j, :, sub_w - n : sub_w]
        return out_k, out_v, valid

    def _kv_store(self) -> _PrefixKV:
        """The prefix cache, emptied when the weights have changed since it was filled."""
        mark = _weights_mark(self.model)
        if self._prefix_kv is None or self._prefix_kv.mark != mark:
            self._prefix_kv = _PrefixKV(mark)
        self._prefix_kv.budget = int(self.prefix_cache_mb * 2**20)
        return self._prefix_kv

    def clear_prefix_cache(self) -> None:
        """Drop every cached prefix KV (it is also dropped by itself when the weights change)."""
        self._prefix_kv = None

    def _encode_rows(self, levels: list[tuple[list[Any], list[Any], Any, list[int] | None]], row_group: list[int],
                     seqs: list[list[int]], start: list[int], plan: list[tuple[int, list[int]]],
                     capacity: int | None = None) -> tuple[list[Any], list[Any], Any, Any]:
        """Encode token sequences ``seqs`` (row ``r`` at positions ``start[r]...``) that attend to single
        copies of the prefix ``levels`` (row ``r`` belongs to batch group ``row_group[r]`` and reads, of each
        level, the group that level's ``group_of`` maps it to; group 0 of a header level), a chunk of ``plan``
        at a time (``(width, rows)``: rows left-padded to ``width``).

        Returns each layer's keys and values ``[rows, kv_heads, capacity, dim]`` whose first ``W`` positions
        hold the sequences left-padded to the longest one, ``W`` (padding zeroed), their validity
        ``[rows, W]`` and the last position's logits of every row."""
        import torch

        from ._shared_prefix import SharedPrefixState, build_shared_cache, shared_prefix_attention

        dev = self.device
        n, w_max = len(seqs), max(len(x) for x in seqs)
        ids, valid = self._left_pad(seqs, self.pad_id, w_max)
        ids, valid = ids.to(dev), valid.to(dev)
        pos = torch.tensor(start, device=dev)[:, None] + (valid.cumsum(-1) - 1).clamp(min=0)
        keys: list[Any] = []
        values: list[Any] = []
        logits: Any = None
        for width, rows in plan:
            idx = torch.tensor(rows, device=dev)
            chunk_ids, chunk_valid, chunk_pos = ids[idx, w_max - width:], valid[idx, w_max - width:], pos[idx]
            if levels:
                cache = build_shared_cache([(k, v) for k, v, _, _ in levels], 0)
                state = SharedPrefixState(cache, _prefix_levels(levels, [row_group[r] for r in rows]),
                                          chunk_valid, width + 1)
                state.compiled = self.compile_attention
                with shared_prefix_attention(self._base, state):
                    out, _ = self._forward(chunk_ids, None, chunk_pos[:, w_max - width:], cache)
            else:
                out, cache = self._forward(chunk_ids, chunk_valid.long(), chunk_pos[:, w_max - width:], make_cache(0))
            if logits is None:
                logits = out.new_empty((n, out.shape[-1]))
            logits[idx] = out
            for li, layer in enumerate(cache.layers):
                if li >= len(keys):
                    k, v = layer.keys, layer.values
                    keys.append(k.new_empty((n, k.shape[1], capacity or w_max, k.shape[3])))
                    values.append(v.new_empty((n, v.shape[1], capacity or w_max, v.shape[3])))
                if width < w_max:
                    keys[li][idx, :, : w_max - width] = 0
                    values[li][idx, :, : w_max - width] = 0
                keys[li][idx, :, w_max - width : w_max] = layer.keys
                values[li][idx, :, w_max - width : w_max] = layer.values
            del cache
        return keys, values, valid.bool(), logits

    @staticmethod
    def _split(groups: list[tuple[list[int], list[list[int]]]], gen: list[Generation]) -> list[list[Generation]]:
        out: list[list[Generation]] = []
        r = 0
        for _, sufs in groups:
            out.append(gen[r : r + len(sufs)])
            r += len(sufs)
        return out

    def _decode(self, logits: Any, n: int, settings: GenerationSettings, compact: Any, step: Any) -> list[Generation]:
        """Greedy decoding of ``n`` rows with early stopping; ``compact(idx)`` keeps only live rows ``idx``
        and ``step(next_tokens)`` runs one forward step, returning the next logits.  With
        ``settings.logprobs`` each chosen token's log-probability is read off the same logits."""
        import torch

        gen: list[list[int]] = [[] for _ in range(n)]
        lps: list[list[float]] | None = [[] for _ in range(n)] if settings.logprobs else None
        active = list(range(n))  # original row index of each live row
        stop = self._stop_check(settings)
        for _ in range(settings.max_new_tokens):
            nxt = logits.argmax(-1)
            step_lp = None
            if lps is not None:
                full = logits.float()
                step_lp = (full.gather(-1, nxt[:, None]).squeeze(-1) - torch.logsumexp(full, -1)).tolist()
            keep: list[int] = []
            for j, tok in enumerate(nxt.tolist()):
                row = active[j]
                gen[row].append(tok)
                if step_lp is not None:
                    lps[row].append(step_lp[j])
                if not stop(gen[row], tok):
                    keep.append(j)
            if not keep or len(gen[active[keep[0]]]) >= settings.max_new_tokens:
                break
            if len(keep) < len(active):
                idx = torch.tensor(keep, device=nxt.device)
                compact(idx)
                nxt = nxt[idx]
                active = [active[j] for j in keep]
            logits = step(nxt)
        return [Generation(ids, lps[r] if lps is not None else None) for r, ids in enumerate(gen)]


class _PrefixKV:
    """Keys and values of encoded prefixes, by their token ids, least recently used dropped past ``budget``
    bytes; ``mark`` identifies the weights they were computed with."""

    def __init__(self, mark: Any) -> None:
        from collections import OrderedDict

        self.mark = mark
        self.budget = 0
        self.used = 0
        self._items: OrderedDict[tuple[int, ...], tuple[list[tuple[Any, Any]], int]] = OrderedDict()

    def get(self, key: tuple[int, ...]) -> list[tuple[Any, Any]] | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: tuple[int, ...], kv: list[tuple[Any, Any]]) -> None:
        size = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)
        if size > self.budget or key in self._items:
            return
        self._items[key] = (kv, size)
        self.used += size
        while self.used > self.budget:
            _, (_, dropped) = self._items.popitem(last=False)
            self.used -= dropped

    def __len__(self) -> int:
        return len(self._items)


def _weights_mark(model: Any) -> tuple[Any, ...]:
    """A cheap fingerprint of the weights (a strided sample of every parameter, summed, and the active PEFT
    adapters), so that merging, unmerging or switching an adapter, loading other weights or training
    invalidates the prefix cache."""
    import torch

    try:
        with torch.no_grad():
            sums = [float(p.detach().reshape(-1)[:: max(1, p.numel() // 257)].float().sum())
                    for p in model.parameters()]
    except (RuntimeError, NotImplementedError):  # weights not readable here (offloaded to meta/disk)
        return (object(),)  # equal to nothing: the cache never serves such a model
    first = next(model.parameters())
    # unmerged PEFT adapters: switching the active one changes the outputs, not the parameters.  A PeftModel
    # has an active_adapters property; a transformers model a method that raises without adapters.
    active: Any = getattr(model, "active_adapters", None)
    try:
        active = tuple((active() if callable(active) else active) or ())
    except Exception:  # noqa: BLE001 - no adapter loaded (ValueError), peft missing (ImportError) ...
        active = ()
    return (id(model), str(first.dtype), str(first.device), active, tuple(sums))


class _Rows:
    """Live rows of continuous batching: their prompt indices, KV cache (left padded to one width), attention
    mask ``[rows, width]``, last positions and next-token logits."""

    def __init__(self, rows: list[int], cache: Any, mask: Any, pos: Any, logits: Any) -> None:
        self.rows, self.cache, self.mask, self.pos, self.logits = rows, cache, mask, pos, logits

    def select(self, idx: Any) -> None:
        """Keep rows ``idx`` (a tensor of positions in this batch)."""
        self.cache.batch_select_indices(idx)
        keep = idx.tolist()
        self.rows = [self.rows[j] for j in keep]
        self.mask, self.pos, self.logits = self.mask[idx], self.pos[idx], self.logits[idx]

    @staticmethod
    def merge(parts: list[_Rows], reserve: int) -> _Rows:
        """One batch of ``parts``, each left-padded to the widest (padding masked, its keys/values zero)."""
        import torch

        from ._cache import growable_classes

        layer_cls, cache_cls = growable_classes()  # type: ignore[misc]
        width = max(int(p.mask.shape[1]) for p in parts)
        total = sum(len(p.rows) for p in parts)
        layers = []
        for li in range(len(parts[0].cache.layers)):
            k0 = parts[0].cache.layers[li].keys
            kb = k0.new_zeros((total, k0.shape[1], width + reserve, k0.shape[3]))
            vb = k0.new_zeros((total, k0.shape[1], width + reserve, parts[0].cache.layers[li].values.shape[3]))
            r = 0
            for p in parts:
                la = p.cache.layers[li]
                w, m = int(p.mask.shape[1]), len(p.rows)
                kb[r : r + m, :, width - w : width] = la.keys
                vb[r : r + m, :, width - w : width] = la.values
                r += m
            layer = layer_cls(reserve=reserve)
            layer.adopt(kb, vb, width)
            layers.append(layer)
        for p in parts:
            p.cache = None
        mask = torch.cat([torch.nn.functional.pad(p.mask, (width - int(p.mask.shape[1]), 0)) for p in parts])
        return _Rows(rows=[r for p in parts for r in p.rows], cache=cache_cls(layers=layers), mask=mask,
                     pos=torch.cat([p.pos for p in parts]), logits=torch.cat([p.logits for p in parts]))


def attention_window(config: Any) -> int | None:
    """The sliding attention window of a model config when any layer uses one, else None."""
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None) or ()
    uses_window = any(t != "full_attention" for t in layer_types) or (
        window is not None and getattr(config, "use_sliding_window", True)
    )
    return int(window) if uses_window and window is not None else None


def _length_buckets(lengths: Sequence[int], max_buckets: int) -> list[tuple[int, list[int]]]:
    """Rows grouped by length into at most ``max_buckets`` buckets: ``(width, rows)``, each row padded to the
    smallest bucket width that holds it (equal lengths share a bucket: no padding)."""
    distinct = sorted(set(lengths))
    if len(distinct) > max(1, max_buckets):
        step = len(distinct) / max(1, max_buckets)
        distinct = sorted({distinct[min(len(distinct) - 1, round((i + 1) * step) - 1)] for i in range(max_buckets)})
        distinct[-1] = max(lengths)
    rows: dict[int, list[int]] = {w: [] for w in distinct}
    for r, n in enumerate(lengths):
        rows[next(w for w in distinct if w >= n)].append(r)
    return [(w, r) for w, r in rows.items() if r]


def _chunks(lengths: Sequence[int], budget: int, max_buckets: int) -> list[tuple[int, list[int]]]:
    """Length buckets split into chunks of about ``budget`` tokens (at least one row each)."""
    out = []
    for width, rows in _length_buckets(lengths, max_buckets):
        per = max(1, budget // max(width, 1))
        out.extend((width, rows[i : i + per]) for i in range(0, len(rows), per))
    return out


def _prefix_levels(levels: Sequence[tuple[Any, Any, Any, list[int] | None]], row_group: list[int]) -> list[Any]:
    """The :class:`PrefixLevel` s of rows of batch groups ``row_group`` (a level whose ``group_of`` is None, the
    header, is one group read by every row)."""
    from ._shared_prefix import PrefixLevel

    return [PrefixLevel(valid, [0] * len(row_group) if group_of is None else [group_of[g] for g in row_group])
            for _, _, valid, group_of in levels]


def _header_length(prefixes: Sequence[Sequence[int]], minimum: int) -> int:
    """Tokens every prefix starts with (at most the shortest prefix minus one), or 0 below ``minimum``."""
    if len(prefixes) < 2:
        return 0
    head = min(len(os.path.commonprefix(list(prefixes))), min(len(p) for p in prefixes) - 1)
    return head if head >= max(1, minimum) else 0


def _families(prefixes: Sequence[Sequence[int]], min_common: int) -> list[int]:
    """A family id per prefix: prefixes sharing their first ``min_common`` tokens or more with a neighbour in
    lexicographic order form one family (e.g. the prompts of one report with different retrieved examples);
    every other prefix is a family of its own."""
    order = sorted(range(len(prefixes)), key=lambda i: tuple(prefixes[i]))
    fam = [0] * len(prefixes)
    current = -1
    for k, i in enumerate(order):
        if k == 0 or len(os.path.commonprefix([prefixes[order[k - 1]], prefixes[i]])) < min_common:
            current += 1
        fam[i] = current
    return fam
