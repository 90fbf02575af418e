"""The hook-name grammar: TransformerLens's names, parsed once into a small frozen value.

Names are the only public spelling of a place in the model (``blocks.3.attn.hook_z``), so SAEs and results from
the ecosystem line up without translation. Code never builds them by string concatenation: it builds a
:class:`HookName` and formats it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from workers.core.errors import UnknownHookError

GLOBAL_SITES: tuple[str, ...] = (
    "hook_embed",
    "hook_pos_embed",
    "ln_final.hook_scale",
    "ln_final.hook_normalized",
)
"""Hooks outside the blocks, in the order the forward pass reaches them."""

BLOCK_SITES: tuple[str, ...] = (
    "hook_resid_pre",
    "attn.hook_q",
    "attn.hook_k",
    "attn.hook_v",
    "attn.hook_pattern",
    "attn.hook_z",
    "hook_attn_out",
    "hook_resid_mid",
    "mlp.hook_post",
    "hook_mlp_out",
    "hook_resid_post",
)
"""Hooks inside every block, in the order the forward pass reaches them."""

HEAD_SITES: frozenset[str] = frozenset({"attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_z"})
"""Sites shaped ``[batch, pos, head, d_head]``."""

_BLOCK_PATTERN = re.compile(r"^blocks\.(\d+)\.(.+)$")


@dataclass(frozen=True, order=True)
class HookName:
    """One hook point: a site, inside block ``layer`` or (``layer is None``) outside the blocks."""

    layer: int | None
    site: str

    def __str__(self) -> str:
        return self.site if self.layer is None else f"blocks.{self.layer}.{self.site}"

    @classmethod
    def block(cls, layer: int, site: str) -> HookName:
        if site not in BLOCK_SITES:
            raise UnknownHookError(f"unknown block site {site!r}; valid: {', '.join(BLOCK_SITES)}", field="hook")
        return cls(layer, site)

    @property
    def sort_key(self) -> tuple[int, int]:
        """Position in the forward pass: embeddings first, then block by block, then the final norm."""
        if self.layer is None:
            index = GLOBAL_SITES.index(self.site)
            return (-1, index) if self.site.startswith("hook_") else (1 << 30, index)
        return (self.layer, BLOCK_SITES.index(self.site))


def parse_hook_name(name: str, *, field: str = "hook") -> HookName:
    """Parse a TransformerLens hook name; raise :class:`UnknownHookError` naming the valid forms."""
    if name in GLOBAL_SITES:
        return HookName(None, name)
    match = _BLOCK_PATTERN.match(name)
    if match is not None and match.group(2) in BLOCK_SITES:
        return HookName(int(match.group(1)), match.group(2))
    raise UnknownHookError(
        f"unknown hook {name!r}; hooks are {', '.join(GLOBAL_SITES)} or blocks.{{layer}}.{{site}} with site one of "
        f"{', '.join(BLOCK_SITES)}",
        field=field,
    )


def sorted_hooks(names: Iterable[HookName]) -> list[HookName]:
    """Hooks in the order the forward pass reaches them."""
    return sorted(set(names), key=lambda hook: hook.sort_key)
