"""Readers: one module per config format, each turning a file into normalized :class:`LoraSetup` objects.

``read_file`` is the entry point: it loads the file, decides its format and hands it to
that format's reader. A file that is no LoRA config (a CI workflow, a full fine-tune)
gives an empty list; a file recognised as a config lora-lint does not check (another PEFT
method, an ``adapter_config.json`` of another tool) raises :class:`NotALoraConfig` with the
reason; a file that cannot be read raises :class:`InputError`.
"""

from __future__ import annotations

import os
from importlib import import_module

from lora_lint.document import Document, InputError, decode, load_document
from lora_lint.readers.detection import detect_format

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lora_lint.lora_setup import LoraSetup

__all__ = ["FORMATS", "InputError", "NotALoraConfig", "detect_format", "read_document", "read_file"]


class NotALoraConfig(Exception):
    """A file of a known shape that lora-lint does not check; the message is the one-line reason."""


READERS = {
    "peft": "lora_lint.readers.peft",
    "lora-config": "lora_lint.readers.lora_config",
    "axolotl": "lora_lint.readers.axolotl",
    "llamafactory": "lora_lint.readers.llamafactory",
    "torchtune": "lora_lint.readers.torchtune",
    "trl": "lora_lint.readers.trl",
}
"""Format name -> reader module (with a ``read(doc)`` function), imported only when a file needs it."""
FORMATS = (*READERS, "python")
PYTHON_MARKERS = ("LoraConfig", "get_peft_model")
"""Python code (a script, a notebook's cells) without either name has no setup the Python reader would find."""


def read_file(path: str, raw: bytes) -> list[LoraSetup]:
    """Every LoRA setup in the file at ``path`` whose bytes are ``raw``."""
    if path.endswith(".ipynb"):
        from lora_lint.readers import notebook

        return notebook.read(path, raw)
    if path.endswith(".py"):
        text = decode(raw)
        if not any(marker in text for marker in PYTHON_MARKERS):
            return []
        from lora_lint.readers import python

        return python.read(path, text)
    return read_document(load_document(path, raw))


def read_document(doc: Document, fmt: str | None = None) -> list[LoraSetup]:
    """Read an already loaded document, as ``fmt`` or as the detected format."""
    fmt = fmt or detect_format(doc.path, doc.data)
    if fmt is None and _peft_shaped(doc):
        from lora_lint.readers import peft

        reason = peft.out_of_scope(doc.data)
        if reason:
            raise NotALoraConfig(reason)
    module = READERS.get(fmt) if fmt else None
    return import_module(module).read(doc) if module else []


def _peft_shaped(doc: Document) -> bool:
    """Saved by PEFT (``peft_type``) or named like a PEFT adapter's config."""
    return isinstance(doc.data, dict) and ("peft_type" in doc.data or os.path.basename(doc.path) == "adapter_config.json")
