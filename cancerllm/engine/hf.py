"""Batched greedy decoding on a transformers causal LM, with prefix (KV-cache) reuse.

What it does, and why it is fast:

* groups are sorted by prefix length and batched, so left padding is small;
* each prefix is encoded once, in chunks of about ``prefill_tokens`` tokens; the suffixes of a group (the
  eight phenotype questions of one report) read a single copy of its KV cache through shared-prefix
  attention (``_shared_prefix.py``), or, for architectures it does not cover, a copy each;
* the LM head is applied only at the last position during prefill (``logits_to_keep=1``);
* a sequence stops at EOS or as soon as its text contains a stop string (``"}"`` ends an answer set), and
  finished sequences are dropped from the batch so later steps get cheaper.

Positions are computed from the attention mask, so a left-padded batch sees exactly the positions of an
unpadded single sequence; padding between a prefix and its (left-padded) suffix is masked out.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from ._cache import make_cache
from .base import Engine, GenerationSettings, PromptGroup

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
        if self._logits_kw:
            kwargs[self._logits_kw] = 1
        out = self.model(**kwargs)
        new_cache = getattr(out, "cache", None)
        if new_cache is None:
            new_cache = out.past_key_values
        return out.logits[:, -1, :], new_cache

    # ------------------------------------------------------------------------------------------ main
    def generate_groups(
        self, groups: Sequence[PromptGroup], settings: GenerationSettings, *, progress: bool = False
    ) -> list[list[list[int]]]:
        import torch

        results: list[list[list[int]]] = [[[] for _ in g.suffix_ids] for g in groups]
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

        # batch by number of sequences (suffixes), groups sorted by prefix length (longest first)
        order = sorted(range(len(norm)), key=lambda i: -len(norm[i][0]))
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
    ) -> list[list[list[int]]]:
        n = sum(len(sufs) for _, sufs in groups)
        longest = max(len(p) for p, _ in groups) + max(len(s) for _, sufs in groups for s in sufs)
        if self.shared_prefix and n > len(groups):
            from ._shared_prefix import supports_shared_prefix

            if supports_shared_prefix(self._base, longest + settings.max_new_tokens):
                return self._run_batch_shared(groups, settings)
        return self._run_batch_copied(groups, settings)

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
    ) -> list[list[list[int]]]:
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
    ) -> list[list[list[int]]]:
        """Prefill the prefixes in chunks, keep one copy of each, and decode with shared-prefix attention."""
        import torch

        from ._shared_prefix import SharedPrefixState, build_shared_cache, shared_prefix_attention

        dev = self.device
        prefixes = [p for p, _ in groups]
        lp = max(len(p) for p in prefixes)
        # ---- prefill the prefixes, a chunk of about prefill_tokens tokens at a time (groups come longest first)
        keys: list[Any] = []
        values: list[Any] = []
        start = 0
        while start < len(prefixes):
            width = len(prefixes[start])
            stop = start + max(1, self.prefill_tokens // max(width, 1))
            ids, mask = self._left_pad(prefixes[start:stop], self.pad_id)
            ids, mask = ids.to(dev), mask.to(dev)
            _, chunk_cache = self._forward(ids, mask, (mask.cumsum(-1) - 1).clamp(min=0), make_cache(0))
            for li, layer in enumerate(chunk_cache.layers):
                k, v = layer.keys, layer.values
                if not keys or li >= len(keys):
                    keys.append(k.new_zeros((len(prefixes), k.shape[1], lp, k.shape[3])))
                    values.append(v.new_zeros((len(prefixes), v.shape[1], lp, v.shape[3])))
                keys[li][start:stop, :, lp - k.shape[2]:] = k
                values[li][start:stop, :, lp - v.shape[2]:] = v
            del chunk_cache
            start = stop
        _, pre_mask = self._left_pad(prefixes, self.pad_id, lp)
        pre_mask = pre_mask.to(dev)

        # ---- suffixes: each reads its group's single prefix copy
        row_group = [g for g, (_, sufs) in enumerate(groups) for _ in sufs]
        suf_ids, suf_mask = self._left_pad([s for _, sufs in groups for s in sufs], self.pad_id)
        suf_ids, suf_mask = suf_ids.to(dev), suf_mask.to(dev)
        cache = build_shared_cache(keys, values, settings.max_new_tokens + 1)
        del keys, values
        st = SharedPrefixState(cache, pre_mask, row_group, suf_mask, suf_ids.shape[1] + settings.max_new_tokens + 1)
        pre_len = pre_mask.sum(-1)[row_group]
        pos = pre_len[:, None] + (suf_mask.cumsum(-1) - 1).clamp(min=0)
        last = {"pos": pos[:, -1]}

        def compact(idx: Any) -> None:
            st.select_rows(idx)
            last["pos"] = last["pos"][idx]

        def step(nxt: Any) -> Any:
            st.append_token()
            last["pos"] = last["pos"] + 1
            out, _ = self._forward(nxt[:, None], None, last["pos"][:, None], cache)
            return out

        with shared_prefix_attention(self._base, st):
            logits, _ = self._forward(suf_ids, None, pos, cache)
            gen = self._decode(logits, suf_ids.shape[0], settings, compact, step)
        return self._split(groups, gen)

    @staticmethod
    def _split(groups: list[tuple[list[int], list[list[int]]]], gen: list[list[int]]) -> list[list[list[int]]]:
        out: list[list[list[int]]] = []
        r = 0
        for _, sufs in groups:
            out.append(gen[r : r + len(sufs)])
            r += len(sufs)
        return out

    def _decode(self, logits: Any, n: int, settings: GenerationSettings, compact: Any, step: Any) -> list[list[int]]:
        """Greedy decoding of ``n`` rows with early stopping; ``compact(idx)`` keeps only live rows ``idx``
        and ``step(next_tokens)`` runs one forward step, returning the next logits."""
        import torch

        gen: list[list[int]] = [[] for _ in range(n)]
        active = list(range(n))  # original row index of each live row
        stop_strings = tuple(s for s in settings.stop_strings if s)
        stop_chars = {s[-1] for s in stop_strings}
        tok_text = self._token_texts() if stop_strings else None
        for _ in range(settings.max_new_tokens):
            nxt = logits.argmax(-1)
            keep: list[int] = []
            for j, tok in enumerate(nxt.tolist()):
                row = active[j]
                gen[row].append(tok)
                done = tok in self.eos_ids
                if not done and tok_text is not None and tok < len(tok_text):
                    piece = tok_text[tok]
                    if any(c in piece for c in stop_chars):
                        text = self.tokenizer.decode(gen[row][-8:])
                        done = any(s in text for s in stop_strings)
                if not done:
                    keep.append(j)
            if not keep or len(gen[active[keep[0]]]) >= settings.max_new_tokens:
                break
            if len(keep) < len(active):
                idx = torch.tensor(keep, device=nxt.device)
                compact(idx)
                nxt = nxt[idx]
                active = [active[j] for j in keep]
            logits = step(nxt)
        return gen
