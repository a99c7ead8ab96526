"""The layers an adapter wraps, kept as compact as the model they come from.

An adapter on a 32-layer model wraps hundreds of modules, but only a handful of distinct
ones: the same projections in every layer. :class:`AdaptedLayers` is the sequence of
:class:`~lora_lint.arch.counting.AdaptedLayer` records in ``named_modules()`` order, stored
as single layers and runs (one record per distinct layer of a :class:`~lora_lint.arch.blocks.Block`,
named relative to it). The totals that facts and rules read are computed on the runs; the
full records, with full names, are made only when someone iterates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import cached_property

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lora_lint.arch.blocks import Block
    from lora_lint.arch.counting import AdaptedLayer

    Run = tuple[Block, tuple[tuple[AdaptedLayer, ...], ...]]  # a block, and each template's adapted layers


class AdaptedLayers(Sequence):
    """Adapted layers in order; ``parts`` holds single layers and (block, per-template layers) runs."""

    def __init__(self, parts: Sequence[AdaptedLayer | Run] = ()) -> None:
        self.parts = tuple(parts)

    @cached_property
    def _expanded(self) -> tuple[AdaptedLayer, ...]:
        return tuple(self._iterate())

    def _iterate(self) -> Iterator[AdaptedLayer]:
        for part in self.parts:
            if not isinstance(part, tuple):
                yield part
                continue
            block, adapted = part
            for position, template in enumerate(block.template_of):
                prefix = block.prefix(position)
                for layer in adapted[template]:
                    yield layer.renamed(prefix + layer.name)

    def _weighted(self) -> Iterator[tuple[AdaptedLayer, int]]:
        """Each distinct layer record once, with how many adapted layers it stands for."""
        for part in self.parts:
            if not isinstance(part, tuple):
                yield part, 1
                continue
            block, adapted = part
            for template, instances in enumerate(block.instances):
                for layer in adapted[template]:
                    yield layer, instances

    def __len__(self) -> int:
        return sum(instances for _, instances in self._weighted())

    def __bool__(self) -> bool:
        return any(instances for _, instances in self._weighted())

    def __iter__(self) -> Iterator[AdaptedLayer]:
        return iter(self._expanded)

    def __getitem__(self, index: int) -> AdaptedLayer:  # type: ignore[override]
        return self._expanded[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AdaptedLayers):
            return self._expanded == other._expanded
        return isinstance(other, tuple) and self._expanded == other

    def __hash__(self) -> int:
        return hash(self._expanded)

    def __repr__(self) -> str:
        return repr(self._expanded)

    def total(self, field: str) -> int:
        """The sum of one numeric field (``lora_params``, ``per_rank``, ``in_features``...) over every layer."""
        return sum(getattr(layer, field) * instances for layer, instances in self._weighted())

    def max_rank(self) -> int | None:
        """The largest rank of any layer (None: no layer)."""
        return max((layer.r for layer, instances in self._weighted() if instances), default=None)

    def of_kinds(self, kinds: frozenset[str]) -> AdaptedLayers:
        """The layers whose module kind is one of ``kinds``, still compact."""
        parts: list[AdaptedLayer | Run] = []
        for part in self.parts:
            if not isinstance(part, tuple):
                if part.kind in kinds:
                    parts.append(part)
                continue
            block, adapted = part
            parts.append((block, tuple(tuple(layer for layer in layers if layer.kind in kinds) for layers in adapted)))
        return AdaptedLayers(parts)

    def contains(self, name: str, *, below: bool = False) -> bool:
        """Whether a layer is named ``name`` (or, with ``below``, sits anywhere under it), without expanding."""
        inside = name + "."
        for part in self.parts:
            if not isinstance(part, tuple):
                if part.name == name or (below and part.name.startswith(inside)):
                    return True
                continue
            block, adapted = part
            stack = block.stack + "."
            if stack.startswith(inside):  # ``name`` is the stack or holds it: every layer of the block is under it
                if below and any(adapted[template] for template in block.template_of):
                    return True
                continue
            if not inside.startswith(stack):
                continue
            index, _, rest = inside[len(stack) :].partition(".")  # "3", "mlp.up_proj." (empty: the layer itself)
            for position, template in enumerate(block.template_of):
                if block.indices[position] != index:
                    continue
                for layer in adapted[template]:
                    relative = layer.name + "."
                    if relative == rest or (below and relative.startswith(rest)):
                        return True
        return False

    def where(self, keep: Callable[[AdaptedLayer], bool]) -> list[AdaptedLayer]:
        """The layers ``keep`` accepts, named in full; ``keep`` must not read names (it first sees relative ones).

        Only when a distinct record passes are the layers expanded, so a rare condition (a rank
        above a layer's width) costs one look at each distinct layer.
        """
        if not any(keep(layer) for layer, instances in self._weighted() if instances):
            return []
        return [layer for layer in self._expanded if keep(layer)]
