"""Repeated layers: a model's module list seen as runs of identical layers.

A decoder of 32 layers lists hundreds of modules whose names differ only in the layer
number (``model.layers.7.self_attn.q_proj``). Whenever the adapter settings cannot tell one
layer from another (a target list of plain module names, no regex, no layer selection, no
rank pattern), PEFT treats every instance of a layer alike, so a count can look at each
distinct layer once and multiply (``_Counter.run_by_blocks``); where they can, every layer's
names are matched, but layers that come out alike still share one record. Families describe
most stacks as blocks directly (``Builder.repeat``); :func:`blocks_of` finds the runs among the
modules a family lists one by one, and :mod:`lora_lint.arch.adapted_layers` keeps an adapter's
layers in the same compact form.

The view is exact by construction: expanding it (:func:`expand`) gives back the module list
it was read from, in order. A layer is cut at the first all-digit name component
(``model.layers.7.``), and two layers share a template only when their modules agree in
everything but that number: relative name, kind, parameter shapes and tie.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from operator import attrgetter

from lora_lint.arch.model import LORA_MODULE_KINDS, Module
from lora_lint.record import Record

_LAYER = re.compile(r"(.+?)\.(\d+)\.")
"""A name's stack and layer number: ``model.layers.7.mlp.up_proj`` -> ``model.layers``, ``7``."""


class Block(Record):
    """Consecutive layers ``{stack}.{index}`` of one stack, each an instance of one of ``templates``."""

    stack: str
    indices: tuple[str, ...]  # the layer numbers as written, in named_modules order
    template_of: tuple[int, ...]  # for each layer, its template's position in ``templates``
    templates: tuple[tuple[Module, ...], ...]  # a layer's modules, named relative to it (``self_attn.q_proj``)
    instances: tuple[int, ...]  # how many layers use each template

    def prefix(self, position: int) -> str:
        """``model.layers.7.``: what the names of the ``position``-th layer start with."""
        return f"{self.stack}.{self.indices[position]}."

    def first_layer(self, template: int) -> int:
        """The position of the first layer built from ``template``: its names stand for all of them."""
        return self.template_of.index(template)


Part = Module | Block


def blocks_of(modules: tuple[Module, ...]) -> tuple[Part, ...]:
    """``modules`` with every run of layers of one stack grouped into a :class:`Block`, order kept.

    A layer that starts a run, or follows one that could not be recognised, is read module by
    module and compared with the block's templates; the layers after it are recognised in
    bulk (:meth:`_BlockBuilder.extend`).
    """
    parts: list[Part | _BlockBuilder] = []
    block: _BlockBuilder | None = None
    start, count = 0, len(modules)
    while start < count:
        module = modules[start]
        match = _LAYER.match(module.name)
        if match is None:
            parts.append(module)
            block = None
            start += 1
            continue
        prefix = match.group(0)
        end, joined = _layer_end(modules, start, prefix)
        stack, _, index = prefix[:-1].rpartition(".")
        if block is None or block.stack != stack:
            block = _BlockBuilder(stack)
            parts.append(block)
        block.add(index, prefix, modules[start:end], joined)
        start = block.extend(modules, end)
    return tuple(part.build() if isinstance(part, _BlockBuilder) else part for part in parts)


def _layer_end(modules: tuple[Module, ...], start: int, prefix: str) -> tuple[int, str]:
    """Where the layer starting at ``start`` ends (the first module not named ``prefix...``), and its joined names."""
    end = start + 1
    while end < len(modules) and modules[end].name.startswith(prefix):
        end += 1
    return end, "\n".join(map(_NAME, modules[start:end]))


def expand(parts: tuple[Part, ...]) -> Iterator[Module]:
    """The modules, named in full, in ``named_modules()`` order."""
    for part in parts:
        if isinstance(part, Module):
            yield part
            continue
        for position, template in enumerate(part.template_of):
            prefix = part.prefix(position)
            for module in part.templates[template]:
                yield module.renamed(prefix + module.name, module.tied_to)


class _BlockBuilder:
    def __init__(self, stack: str) -> None:
        self.stack = stack
        self.indices: list[str] = []
        self.template_of: list[int] = []
        self.templates: list[tuple[Module, ...]] = []
        self.signatures: list[tuple[str, tuple]] = []  # per template: relative names joined, and the shapes

    def add(self, index: str, prefix: str, layer: tuple[Module, ...], joined: str) -> None:
        shapes = tuple(map(_SHAPES, layer))
        position = self._template(prefix, joined, shapes)
        if position is None:
            position = len(self.templates)
            start = len(prefix)
            self.templates.append(tuple(Module(m.name[start:], *fields) for m, fields in zip(layer, shapes)))
            relative = "\n".join(m.name[start:] for m in layer)
            self.signatures.append((relative, shapes))
        self.indices.append(index)
        self.template_of.append(position)

    def extend(self, modules: tuple[Module, ...], start: int) -> int:
        """Take the layers from ``start`` that repeat a known template, numbered on from the last; where they end.

        A stack is mostly a few layers repeated (one, or a sliding and a full attention layer in
        turn): each layer is recognised by its extent and its shapes, compared as one tuple, and
        all their names are checked at once, as one joined string against the templates' names.
        """
        last = self.indices[-1]
        if str(int(last)) != last:  # a layer number written with leading zeros
            return start
        number, position, count = int(last) + 1, start, len(modules)
        taken: list[tuple[str, int]] = []  # (prefix, template) of each layer recognised
        previous = self.template_of[-1]
        while position < count:
            prefix = f"{self.stack}.{number}."
            if not modules[position].name.startswith(prefix):
                break
            found = None
            for template in (previous, *range(len(self.templates))):
                end = position + len(self.templates[template])
                if end > count or not modules[end - 1].name.startswith(prefix):
                    continue
                if end < count and modules[end].name.startswith(prefix):
                    continue
                if tuple(map(_SHAPES, modules[position:end])) == self.signatures[template][1]:
                    found = template
                    break
            if found is None:
                break
            taken.append((prefix, found))
            position += len(self.templates[found])
            previous = found
            number += 1
        if not taken:
            return start
        expected = "\n".join(prefix + self.signatures[t][0].replace("\n", "\n" + prefix) for prefix, t in taken)
        if "\n".join(map(_NAME, modules[start:position])) != expected:
            return start  # same shapes, other names: left to the layer-by-layer reading
        self.indices += [prefix[len(self.stack) + 1 : -1] for prefix, _ in taken]
        self.template_of += [template for _, template in taken]
        return position

    def _template(self, prefix: str, joined: str, shapes: tuple) -> int | None:
        """The template this layer instantiates, trying the previous layer's first."""
        if not self.template_of:
            return None
        last = self.template_of[-1]
        for position in (last, *range(len(self.signatures))):
            relative, known = self.signatures[position]
            if known == shapes and joined == prefix + relative.replace("\n", "\n" + prefix):
                return position
        return None

    def build(self) -> Block:
        instances = [0] * len(self.templates)
        for template in self.template_of:
            instances[template] += 1
        return Block(self.stack, tuple(self.indices), tuple(self.template_of), tuple(self.templates), tuple(instances))


_NAME = attrgetter("name")
_SHAPES = attrgetter("kind", "params", "in_features", "out_features", "tied_to")
"""What two modules of two layers must share, besides their names relative to the layer."""


class BlockNames:
    """What a target list can see of ``named_modules()`` (every module and its ancestors), per block.

    A target entry without a dot matches the names whose last component it is; counting those
    per distinct layer and multiplying gives the same numbers as listing every name. Names
    whose last component is a layer number are left out: an entry made of digits is never
    counted this way.
    """

    def __init__(self, parts: tuple[Part, ...]) -> None:
        flat: dict[str, None] = {}  # names outside repeated layers, in named_modules order
        self.name_count: dict[str, int] = {}  # last component -> names with it, ancestors included
        self.capable_count: dict[str, int] = {}  # last component -> LoRA-capable modules with it
        inner: set[str] = set()
        layers_seen: set[str] = set()
        self.distinct = True  # every layer of the model is one run of consecutive modules
        for part in parts:
            if isinstance(part, Module):
                add_with_ancestors(part.name, flat)
                if part.kind in LORA_MODULE_KINDS:
                    _bump(self.capable_count, _leaf(part.name), 1)
                continue
            add_with_ancestors(part.stack, flat)
            for index in part.indices:
                layer = f"{part.stack}.{index}"
                self.distinct = self.distinct and layer not in layers_seen
                layers_seen.add(layer)
            for template, instances in zip(part.templates, part.instances):
                names: dict[str, None] = {}
                for module in template:
                    add_with_ancestors(module.name, names)
                    if module.kind in LORA_MODULE_KINDS:
                        _bump(self.capable_count, _leaf(module.name), instances)
                for name in names:
                    leaf = _leaf(name)
                    inner.add(leaf)
                    _bump(self.name_count, leaf, instances)
        for name in flat:
            _bump(self.name_count, _leaf(name), 1)
        self.flat_names = tuple(flat)
        self.inner_leaves = frozenset(inner)
        """Last components of the names inside repeated layers (layer numbers aside)."""


def _leaf(name: str) -> str:
    return name[name.rfind(".") + 1 :]


def _bump(counts: dict[str, int], key: str, by: int) -> None:
    counts[key] = counts.get(key, 0) + by


def add_with_ancestors(name: str, names: dict[str, None]) -> None:
    """``name`` and every name above it (``a``, ``a.b`` for ``a.b.c``), each once, parents first."""
    if name in names:
        return
    start = name.find(".")
    while start != -1:
        names.setdefault(name[:start], None)
        start = name.find(".", start + 1)
    names[name] = None
