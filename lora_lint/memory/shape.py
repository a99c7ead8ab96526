"""The handful of model dimensions that memory depends on.

The estimator does not walk modules: activation memory is a function of widths per
token (hidden, attention, MLP, vocabulary) and of which linear layers carry an adapter.
:class:`ModelShape` holds exactly those numbers, so the formulas stay readable and the
tests can build shapes by hand.
"""

from __future__ import annotations

from math import prod

from lora_lint.record import Record

from lora_lint.arch.blocks import Block
from lora_lint.arch.model import ALL_LINEAR_KINDS, EXPERTS, LINEAR, NORM

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lora_lint.arch.counting import ParamCount
    from lora_lint.arch.families import Config
    from lora_lint.arch.model import Architecture, Module


class ModelShape(Record):
    """Dimensions of a decoder-only transformer plus its adapter, as memory sees them.

    Parameter counts are exact (from the architecture model); the ``*_per_layer`` widths
    are averages over the blocks, which is exact for the uniform stacks LoRA targets.
    """

    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    gated_mlp: bool
    """SwiGLU/GeGLU MLPs (Llama, Mistral, Qwen, Gemma) keep gate, activation and up outputs."""
    base_params: int
    quantizable_params: int
    """Weights of the blocks' linear layers: what bitsandbytes quantizes (the output head is skipped)."""
    quantizable_rows: int
    """Output features summed over those linears: LLM.int8 keeps one fp32 scale per row."""
    quantizable_inputs_per_layer: int
    """Input features summed over one block's linears: LLM.int8 keeps each one's input for backward."""
    trainable_params: int
    adapted_inputs_per_layer: int
    """Input features summed over one block's adapted linears."""
    adapted_ranks_per_layer: int
    """Ranks summed over one block's adapted linears."""
    norm_params: int = 0
    """Weights and biases of the norm layers: what LLaMA-Factory's ``upcast_layernorm`` keeps in fp32."""
    expert_params: int = 0
    """Weights of fused MoE experts (3-D parameters, not ``nn.Linear``): bitsandbytes leaves them unquantized
    unless the framework quantizes them itself (axolotl's ``quantize_moe_experts``)."""
    expert_rows: int = 0
    """Rows of those weights (all dimensions but the last): LLM.int8 keeps one fp32 scale per row."""

    @property
    def attention_width(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_width(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def unquantized_params(self) -> int:
        """Embeddings, output head, norms and biases: what stays in floating point under 4/8-bit loading."""
        return self.base_params - self.quantizable_params


_ATTENTION_WORDS = ("attn", "attention", "qkv", "query", "key", "value")


def shape_from_architecture(arch: Architecture, param_count: ParamCount) -> ModelShape:
    """The dimensions of ``arch`` (``lora_lint.arch``) with the adapter ``param_count`` describes.

    Head counts come from the config the way the family reads it; MLP width and gating are
    read off the first block's linear layers, so families that name their MLP differently
    (``fc1``, ``dense_h_to_4h``, ``gate_up_proj``) need no table here.
    """
    config = arch.language_config  # the language model's config, read with its family's defaults
    heads = int(config["num_attention_heads"]) if config else 1
    kv_heads = int(config.either("num_key_value_heads", heads)) if config else heads
    head_dim = int(config.either("head_dim", arch.hidden_size // heads)) if config else arch.hidden_size
    in_blocks, first_block = _block_linears(arch)
    intermediate, gated = _mlp_width(first_block, config)
    quantizable = [(m, n) for m, n in in_blocks if m.kind == LINEAR]  # bitsandbytes replaces nn.Linear only
    expert_weights = [
        (shape, n) for m, n in arch.weighted_modules() if m.kind == EXPERTS for _, shape in m.params if len(shape) == 3
    ]
    layers = max(arch.num_layers, 1)
    adapted = param_count.layers.of_kinds(ALL_LINEAR_KINDS)
    return ModelShape(
        num_layers=arch.num_layers,
        hidden_size=arch.hidden_size,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=intermediate,
        vocab_size=arch.vocab_size,
        gated_mlp=gated,
        base_params=param_count.base_params,
        quantizable_params=sum(m.numel("weight") * n for m, n in quantizable),
        quantizable_rows=sum(m.out_features * n for m, n in quantizable),
        quantizable_inputs_per_layer=sum(m.in_features * n for m, n in quantizable) // layers,
        trainable_params=param_count.trainable_params,
        adapted_inputs_per_layer=adapted.total("in_features") // layers,
        adapted_ranks_per_layer=adapted.total("r") // layers,
        norm_params=sum(m.own_numel * n for m, n in arch.weighted_modules() if m.kind == NORM),
        expert_params=sum(prod(shape) * n for shape, n in expert_weights),
        expert_rows=sum(prod(shape[:-1]) * n for shape, n in expert_weights),
    )


def _block_linears(arch: Architecture) -> tuple[list[tuple[Module, int]], list[Module]]:
    """The linears inside numbered blocks, weighted, and those of the blocks numbered 0, named in full.

    A module belongs to the block its first all-digit name component numbers: every module of a
    repeated layer does, and a module outside one does when its name has such a component.
    """
    in_blocks: list[tuple[Module, int]] = []
    first_block: list[Module] = []
    for part in arch.parts:
        if not isinstance(part, Block):
            if part.kind in ALL_LINEAR_KINDS:
                index = _layer_index(part.name)
                if index is not None:
                    in_blocks.append((part, 1))
                if index == 0:
                    first_block.append(part)
            continue
        for template, instances in zip(part.templates, part.instances):
            in_blocks += [(m, instances) for m in template if m.kind in ALL_LINEAR_KINDS]
        for position, template in enumerate(part.template_of):
            if int(part.indices[position]) == 0:
                prefix = part.prefix(position)
                first_block += [m.renamed(prefix + m.name, m.tied_to) for m in part.templates[template] if m.kind in ALL_LINEAR_KINDS]
    return in_blocks, first_block


def _layer_index(name: str) -> int | None:
    """``model.layers.3.mlp.up_proj`` -> 3: the first numeric component names the block."""
    return next((int(part) for part in name.split(".") if part.isdigit()), None)


def _mlp_width(block: list[Module], config: Config | None) -> tuple[int, bool]:
    """(intermediate size, gated?) from one block's MLP linears.

    Two linears of the widest output (gate and up) mean a gated MLP; so does one linear
    twice the configured ``intermediate_size`` wide (Phi-3's fused ``gate_up_proj``).
    """
    mlp = [m for m in block if not any(word in m.name.rsplit(".", 1)[-1].lower() or word in m.name.lower().split(".")
                                       for word in _ATTENTION_WORDS)]  # fmt: skip
    if not mlp:
        return 0, False
    widest = max(m.out_features for m in mlp)
    configured = config["intermediate_size"] if config else None
    if configured and widest == 2 * configured:
        return int(configured), True
    return widest, sum(m.out_features == widest for m in mlp) >= 2
