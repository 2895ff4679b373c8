"""Tables for the terminal: rich when it is installed (the ``cli`` extra), plain columns otherwise."""

from __future__ import annotations


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        from bpir.bench.timing import table

        print(title)
        print(table([header, *rows]))
        return
    t = Table(title=title)
    for i, h in enumerate(header):
        t.add_column(h, justify="left" if i == 0 else "right")
    for r in rows:
        t.add_row(*r)
    Console(width=max(140, Console().width)).print(t)
