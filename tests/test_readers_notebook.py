"""Jupyter notebooks: code cells read as one script, findings located by file line (and cell/line in text)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_lint.document import InputError
from lora_lint.engine import Linter
from lora_lint.project import Project
from lora_lint.readers import notebook, read_file
from lora_lint.report.text import render_text


def cell(kind: str, text: str) -> dict:
    return {"cell_type": kind, "metadata": {}, "source": text.splitlines(keepends=True), **({"outputs": [], "execution_count": None} if kind == "code" else {})}


def notebook_bytes(*cells: dict, **top) -> bytes:
    """A notebook as Jupyter saves it: one source line per JSON line."""
    data = {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5, **top}
    return (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode()


NOTEBOOK = notebook_bytes(
    cell("markdown", "# Fine-tune with LoRA\n"),
    cell("code", "%pip install peft\n!nvidia-smi\nfiles = !ls\nLORA_R = 64\n"),
    cell("code", "from peft import LoraConfig\nif True:\n    !echo inside a block\nconfig = LoraConfig(\n    r=LORA_R,\n    lora_alpha=16,\n)\n"),
)


def file_line(raw: bytes, text: str) -> int:
    """The line of the .ipynb file whose JSON string holds ``text``."""
    lines = raw.decode().splitlines()
    return next(i for i, line in enumerate(lines, 1) if json.dumps(text)[1:-1] in line)


def test_code_cells_read_as_one_script_located_in_the_file() -> None:
    (setup,) = read_file("nb.ipynb", NOTEBOOK)
    assert (setup.get("r"), setup.get("lora_alpha")) == (64, 16)
    assert setup.location_of("r").line == file_line(NOTEBOOK, "LORA_R = 64")
    assert setup.location_of("lora_alpha").line == file_line(NOTEBOOK, "    lora_alpha=16,")
    assert setup.location_of("lora_alpha").column == 16  # the column in the code line
    assert setup.start.line == file_line(NOTEBOOK, "config = LoraConfig(")
    assert setup.extras["provenance"]["r"] == "r = 64 from `LORA_R = 64`, cell 2, line 4"


def test_text_report_shows_cell_and_line(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_bytes(NOTEBOOK)
    results = Linter(Project(tmp_path), report_facts=False).lint_paths([str(path)])
    text = render_text(results)
    finding = next(f for r in results for f in r.findings if f.code == "LL106" or f.code == "LL105")
    assert finding.line == file_line(NOTEBOOK, "    lora_alpha=16,")
    assert "cell 3, line 6 |     lora_alpha=16," in text


def test_suppression_comment_in_a_cell(tmp_path: Path) -> None:
    raw = notebook_bytes(cell("code", "from peft import LoraConfig\nLoraConfig(r=64, lora_alpha=16)  # lora-lint: disable=LL105,LL106\n"))
    path = tmp_path / "nb.ipynb"
    path.write_bytes(raw)
    (result,) = Linter(Project(tmp_path)).lint_paths([str(path)])
    assert not {"LL105", "LL106", "LL009"} & {f.code for f in result.findings}


def test_discovery_picks_up_lora_notebooks_only(tmp_path: Path) -> None:
    (tmp_path / "train.ipynb").write_bytes(NOTEBOOK)
    (tmp_path / "plots.ipynb").write_bytes(notebook_bytes(cell("code", "import matplotlib\n")))
    (tmp_path / "broken.ipynb").write_bytes(b"{not json, mentions LoraConfig")
    results = Linter(Project(tmp_path)).lint_paths([str(tmp_path)])
    by_file = {Path(r.path).name: r for r in results}
    assert set(by_file) == {"train.ipynb", "broken.ipynb"}
    assert by_file["train.ipynb"].format == "python"
    assert "not a Jupyter notebook: invalid JSON" in by_file["broken.ipynb"].error.message


def test_single_string_sources_and_nbformat_3() -> None:
    single = notebook_bytes({"cell_type": "code", "metadata": {}, "outputs": [], "source": "x = 1\nLoraConfig(r=4)"})
    (setup,) = read_file("nb.ipynb", single)
    assert setup.get("r") == 4 and setup.location_of("r").line == file_line(single, "LoraConfig(r=4)")
    old = json.dumps({"nbformat": 3, "worksheets": [{"cells": [{"cell_type": "code", "input": ["LoraConfig(\n", "r=8)\n"]}]}]}, indent=1)
    (setup,) = read_file("old.ipynb", old.encode())
    assert setup.get("r") == 8 and setup.location_of("r").line == file_line(old.encode(), "r=8)")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"LoraConfig(r=8)\n", "not a Jupyter notebook: invalid JSON"),
        (b'["LoraConfig"]', "not a Jupyter notebook: the top level is not a JSON object"),
        (b'{"cells": "LoraConfig"}', "not a Jupyter notebook: no list of cells"),
        (b'{"cells": [{"cell_type": "code", "source": [1, "LoraConfig"]}]}', "cell 1 has a source that is not text"),
        (b"\x00\x01LoraConfig", "binary file"),
        (b'{"cells": [' + b"[" * 100_000 + b"]" * 100_000 + b'], "x": "LoraConfig"}', "not a Jupyter notebook"),
    ],
)
def test_hostile_notebooks_give_one_clear_line(raw: bytes, message: str) -> None:
    with pytest.raises(InputError) as caught:
        read_file("nb.ipynb", raw)
    assert message in caught.value.message and "\n" not in caught.value.message


def test_syntax_error_names_the_cell() -> None:
    raw = notebook_bytes(cell("code", "x = 1\n"), cell("code", "y = 2\nLoraConfig(r=8\n"))
    with pytest.raises(InputError) as caught:
        read_file("nb.ipynb", raw)
    assert "(cell 2, line 2)" in caught.value.message
    assert caught.value.line == file_line(raw, "LoraConfig(r=8")


def test_huge_notebooks_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notebook, "MAX_BYTES", 1000)
    with pytest.raises(InputError, match="notebook too large"):
        read_file("nb.ipynb", b" " * 1001)


def test_notebooks_without_a_setup_are_not_parsed() -> None:
    assert read_file("nb.ipynb", b"{ this is not even JSON }") == []


def test_cell_magics() -> None:
    raw = notebook_bytes(
        cell("code", "%%bash\npip install peft\nif [ -d x ]; then echo; fi\n"),
        cell("code", "%%capture\nR = 8\n"),
        cell("code", "LoraConfig(r=R)\n"),
    )
    (setup,) = read_file("nb.ipynb", raw)
    assert setup.get("r") == 8
