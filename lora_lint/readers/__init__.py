"""Readers: one module per config format, each turning a file into normalized :class:`LoraSetup` objects.

``read_file`` is the entry point: it loads the file, decides its format and hands it to
that format's reader. A file that is no LoRA config (a CI workflow, a full fine-tune)
gives an empty list; a file that cannot be read raises :class:`InputError`.
"""

from __future__ import annotations

from collections.abc import Callable

from lora_lint.document import Document, InputError, decode, load_document
from lora_lint.lora_setup import LoraSetup
from lora_lint.readers import axolotl, llamafactory, lora_config, peft, python, torchtune
from lora_lint.readers.detection import detect_format

__all__ = ["FORMATS", "InputError", "detect_format", "read_document", "read_file"]

READERS: dict[str, Callable[[Document], list[LoraSetup]]] = {
    "peft": peft.read,
    "lora-config": lora_config.read,
    "axolotl": axolotl.read,
    "llamafactory": llamafactory.read,
    "torchtune": torchtune.read,
}
FORMATS = (*READERS, "python")


def read_file(path: str, raw: bytes) -> list[LoraSetup]:
    """Every LoRA setup in the file at ``path`` whose bytes are ``raw``."""
    if path.endswith(".py"):
        text = decode(raw)
        return python.read(path, text) if "LoraConfig" in text else []
    return read_document(load_document(path, raw))


def read_document(doc: Document, fmt: str | None = None) -> list[LoraSetup]:
    """Read an already loaded document, as ``fmt`` or as the detected format."""
    fmt = fmt or detect_format(doc.path, doc.data)
    reader = READERS.get(fmt) if fmt else None
    return reader(doc) if reader else []
