"""The human report, shaped like ruff's: ``path:line:col: CODE [severity] message`` and the line itself."""

from __future__ import annotations

from lora_lint.report import summary

_COLORS = {"error": "\033[31m", "warning": "\033[33m", "info": "\033[36m", "bold": "\033[1m", "dim": "\033[2m"}
_RESET = "\033[0m"


def render_text(results: list, *, color: bool = False) -> str:
    def paint(text: str, style: str) -> str:
        return f"{_COLORS[style]}{text}{_RESET}" if color else text

    out: list[str] = []
    for result in results:
        if result.error:
            e = result.error
            out.append(f"{paint(result.path, 'bold')}:{e.line}:{e.column}: {paint('error', 'error')}: {e.message}")
        if result.skipped:
            out.append(f"{paint(result.path, 'bold')}: {paint('skipped', 'dim')}: {result.skipped}")
        lines = _source_lines(result.path) if result.findings else []
        for f in result.findings:
            out.append(f"{paint(f.path, 'bold')}:{f.line}:{f.column}: {paint(f.code, f.severity)} [{f.severity}] {f.message}")
            if isinstance(lines, dict):  # a notebook: show the cell's code line, not the JSON
                code = lines.get(f.line)
                if code is not None:
                    gutter = f"  cell {code.cell}, line {code.line} | "
                    out.append(paint(gutter, "dim") + code.text.rstrip())
                    out.append(paint(" " * (len(gutter) - 2) + "| ", "dim") + " " * (f.column - 1) + paint("^", f.severity))
            elif 0 < f.line <= len(lines):
                source = lines[f.line - 1].rstrip()
                out.append(paint(f"  {f.line:>4} | ", "dim") + source)
                out.append(paint("       | ", "dim") + " " * (f.column - 1) + paint("^", f.severity))
    counts = summary(results)
    by = counts["by_severity"]
    tail = f"{counts['findings']} finding(s) in {counts['configs']} config(s): {by['error']} error, {by['warning']} warning, {by['info']} info"
    if counts["unreadable"]:
        tail += f"; {counts['unreadable']} file(s) could not be read"
    out.append(paint(tail, "bold") if out else tail)
    return "\n".join(out)


def _source_lines(path: str) -> list[str] | dict:
    """The file's lines; for a notebook, its code lines by line of the file."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return []
    if path.endswith(".ipynb"):
        from lora_lint.readers.notebook import display_lines

        return display_lines(text)
    return text.splitlines()
