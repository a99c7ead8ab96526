"""Jupyter notebooks: the code cells read as one Python script, findings located in the ``.ipynb`` file.

A notebook's code cells run top to bottom in one namespace, so they are joined and read by
the Python reader (:mod:`lora_lint.readers.python`) like one script. IPython syntax that is
not Python (``%magic``, ``!shell``, ``x = !cmd``, ``%%cell`` magics, ``obj?``) is replaced by
``pass`` at the same indentation, so the lines around it still parse.

Where findings point: the *line* is the line of the ``.ipynb`` file that holds the code line
(notebooks as Jupyter saves them keep one code line per JSON line), so SARIF viewers, GitHub
annotations and editors open the right place; the *column* is the column in the code line.
The text report shows the cell and its line instead of the JSON (``cell 3, line 5 | r=16``);
cells are counted from 1 in file order, markdown cells included, as they appear in the notebook.
"""

from __future__ import annotations

import bisect
import re

from lora_lint.document import MAX_BYTES as DOCUMENT_MAX_BYTES
from lora_lint.document import InputError, decode, json_tokens, parse_json
from lora_lint.lora_setup import KeyUse, Location, LoraSetup, ReaderNote
from lora_lint.readers import PYTHON_MARKERS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_BYTES = 50 * 1024 * 1024
"""Notebooks carry their outputs (images, tables): larger than any config, but bounded."""

PYTHON_CELL_MAGICS = ("time", "timeit", "capture", "prun")
"""Cell magics whose body is Python that runs in the notebook's namespace."""

_SHELL_ASSIGNMENT = re.compile(r"^\s*[\w.]+\s*=\s*[!%]")


class CodeLine:
    """One line of a code cell: its cell (1-based), line in the cell (1-based), text, and line in the .ipynb file."""

    __slots__ = ("cell", "line", "text", "file_line")

    def __init__(self, cell: int, line: int, text: str, file_line: int) -> None:
        self.cell = cell
        self.line = line
        self.text = text
        self.file_line = file_line


def read(path: str, raw: bytes) -> list[LoraSetup]:
    """The LoRA setups of a notebook's code, located in the notebook file."""
    text = notebook_text(raw)
    if not any(marker in text for marker in PYTHON_MARKERS):
        return []
    lines = code_lines(text)
    code = "\n".join(_python_lines(lines)) + "\n"
    from lora_lint.readers import python

    try:
        setups = python.read(path, code)
    except InputError as error:
        where = lines[error.line - 1] if 0 < error.line <= len(lines) else None
        if where is None:
            raise
        raise InputError(f"{error.message} (cell {where.cell}, line {where.line})", where.file_line, error.column) from None
    for setup in setups:
        _relocate(setup, lines)
    return setups


def notebook_text(raw: bytes) -> str:
    """Bytes to text with the checks of :func:`lora_lint.document.decode`, under the notebook size limit."""
    if len(raw) > MAX_BYTES:
        raise InputError(f"notebook too large ({len(raw) / 1e6:.1f} MB; limit {MAX_BYTES / 1e6:.0f} MB)")
    if len(raw) <= DOCUMENT_MAX_BYTES:
        return decode(raw)
    decode(raw[:8192])  # the binary and encoding checks, on the start of a large file
    try:
        return (raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})", raw.count(b"\n", 0, exc.start) + 1) from None


def code_lines(text: str) -> list[CodeLine]:
    """Every line of every code cell, in order, with where it sits in the file."""
    data = parse_json(text, "not a Jupyter notebook: ")
    cells = _cells(data)
    positions = _source_positions(text, data)
    out: list[CodeLine] = []
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", cell.get("input", ""))
        if isinstance(source, str):
            pieces = [source]
        elif isinstance(source, list) and all(isinstance(piece, str) for piece in source):
            pieces = source
        else:
            raise InputError(f"not a Jupyter notebook: cell {index + 1} has a source that is not text")
        starts = positions.get(index, [])
        number = 0
        for piece_index, piece in enumerate(pieces):
            file_line = starts[piece_index] if piece_index < len(starts) else (starts[-1] if starts else 1)
            for offset, line in enumerate(piece.split("\n")):
                if offset and line == "" and offset == piece.count("\n"):
                    continue  # the piece ends with a newline
                number += 1
                # a list item is one line; a single source string spreads its lines over one file line
                out.append(CodeLine(index + 1, number, line, file_line))
    return out


def _cells(data: object) -> list:
    if not isinstance(data, dict):
        raise InputError("not a Jupyter notebook: the top level is not a JSON object")
    cells = data.get("cells")
    if cells is None and isinstance(data.get("worksheets"), list):  # nbformat 3
        cells = [cell for sheet in data["worksheets"] if isinstance(sheet, dict) for cell in sheet.get("cells", [])]
    if not isinstance(cells, list):
        raise InputError("not a Jupyter notebook: no list of cells")
    return cells


def _source_positions(text: str, data: dict[str, Any]) -> dict[int, list[int]]:
    """Cell index (in file order, across nbformat 3 worksheets) -> the file line of each string of its source."""
    first_cell_of_sheet: list[int] = []
    if "cells" not in data and isinstance(data.get("worksheets"), list):
        count = 0
        for sheet in data["worksheets"]:
            first_cell_of_sheet.append(count)
            count += len(sheet.get("cells", [])) if isinstance(sheet, dict) else 0
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    found: dict[int, list[int]] = {}
    for is_key, path, match in json_tokens(text):
        if is_key or not match.group().startswith('"'):
            continue
        cell = _source_cell(path, first_cell_of_sheet)
        if cell is not None:
            found.setdefault(cell, []).append(bisect.bisect_right(line_starts, match.start()))
    return found


def _source_cell(path: tuple, first_cell_of_sheet: list[int]) -> int | None:
    """The cell whose source (``input`` in nbformat 3) holds the string at ``path``, or None."""
    if first_cell_of_sheet and path[:1] == ("worksheets",) and len(path) > 2 and isinstance(path[1], int):
        if not 0 <= path[1] < len(first_cell_of_sheet):
            return None
        offset, path = first_cell_of_sheet[path[1]], path[2:]
    elif first_cell_of_sheet:
        return None
    else:
        offset = 0
    if len(path) in (3, 4) and path[0] == "cells" and isinstance(path[1], int) and path[2] in ("source", "input"):
        return offset + path[1]
    return None


def _python_lines(lines: list[CodeLine]) -> list[str]:
    """The code as Python, one line per code line; a ``%%bash``-like cell is skipped whole."""
    out: list[str] = []
    skipped_cell = 0
    for line in lines:
        if line.line == 1:
            magic = line.text.strip()
            skipped_cell = line.cell if magic.startswith("%%") and magic[2:].split(" ")[0] not in PYTHON_CELL_MAGICS else 0
        out.append("" if line.cell == skipped_cell else _python_line(line.text))
    return out


def _python_line(line: str) -> str:
    """IPython-only syntax as ``pass`` at the same indentation; Python as it is."""
    stripped = line.lstrip()
    if stripped.startswith(("%", "!")) or _SHELL_ASSIGNMENT.match(line) or (stripped.endswith("?") and not stripped.startswith("#")):
        return line[: len(line) - len(stripped)] + "pass"
    return line


def _relocate(setup: LoraSetup, lines: list[CodeLine]) -> None:
    """Turn locations in the joined code into locations in the notebook file."""

    def moved(location: Location | None) -> Location | None:
        if location is None or not 0 < location.line <= len(lines):
            return location
        return Location(lines[location.line - 1].file_line, location.column, location.key)

    for setting in setup.settings.values():
        setting.location = moved(setting.location)
    setup.keys[:] = [KeyUse(use.key, moved(use.location), use.value) for use in setup.keys]
    setup.notes[:] = [ReaderNote(note.kind, moved(note.location), note.data) for note in setup.notes]
    setup.start = moved(setup.start)
    provenance = setup.extras.get("provenance")
    if provenance:
        setup.extras["provenance"] = {name: _cell_words(text, lines) for name, text in provenance.items()}


def _cell_words(text: str, lines: list[CodeLine]) -> str:
    """``..., line 28`` (of the joined code) -> ``..., cell 3, line 5``."""
    head, _, number = text.rpartition(", line ")
    if not number.isdigit() or not 0 < int(number) <= len(lines):
        return text
    where = lines[int(number) - 1]
    return f"{head}, cell {where.cell}, line {where.line}"


def display_lines(text: str) -> dict[int, CodeLine]:
    """File line -> the code line shown for it in a text report ({} when the notebook cannot be read)."""
    try:
        return {line.file_line: line for line in reversed(code_lines(text))}
    except InputError:
        return {}


def suppression_text(text: str) -> str:
    """The notebook's code lines placed at their file lines (other lines blank), for ``# lora-lint:`` comments."""
    try:
        lines = code_lines(text)
    except InputError:
        return ""
    out = [""] * (text.count("\n") + 1)
    for line in lines:
        if 0 < line.file_line <= len(out) and not out[line.file_line - 1]:
            out[line.file_line - 1] = line.text
    return "\n".join(out)
