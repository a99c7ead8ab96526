"""The handful of model dimensions that memory depends on.

The estimator does not walk modules: activation memory is a function of widths per
token (hidden, attention, MLP, vocabulary) and of which linear layers carry an adapter.
:class:`ModelShape` holds exactly those numbers, so the formulas stay readable and the
tests can build shapes by hand.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelShape:
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
    head_params: int
    """Output head weights counted in ``base_params`` (0 when tied to the input embedding)."""
    trainable_params: int
    adapted_inputs_per_layer: int
    """Input features summed over one block's adapted linears."""
    adapted_ranks_per_layer: int
    """Ranks summed over one block's adapted linears."""

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
