"""Small self-contained SVG charts for the report: the memory timeline and the benchmark bars."""

from __future__ import annotations

from html import escape


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def memory_timeline(series: list[int], labels: list[str], width: int = 900, height: int = 220) -> str:
    """One bar per node: bytes live while it runs; the peak bar red and labelled."""
    n = max(1, len(series))
    peak = max(series, default=0) or 1
    at = series.index(max(series)) if series else 0
    left, bottom, top = 60, 30, 24
    w = (width - left - 10) / n
    h = height - bottom - top
    parts = [f'<svg class="chart" id="memory-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="bytes live per node">',
             f'<line x1="{left}" y1="{top + h}" x2="{width - 10}" y2="{top + h}" stroke="#888"/>',
             f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" font-size="10">{_bytes(peak)}</text>',
             f'<text x="{left - 4}" y="{top + h}" text-anchor="end" font-size="10">0</text>']  # fmt: skip
    for i, v in enumerate(series):
        bh = h * v / peak
        colour = "#d62728" if i == at else "#4c78a8"
        parts.append(f'<rect x="{left + i * w:.2f}" y="{top + h - bh:.2f}" width="{max(w - 0.5, 0.5):.2f}" '
                     f'height="{bh:.2f}" fill="{colour}"><title>#{i} {escape(labels[i])}: {_bytes(v)} live'
                     f"</title></rect>")  # fmt: skip
    parts.append(f'<text class="peak" x="{left + at * w:.2f}" y="{top - 8}" font-size="11" fill="#d62728">'
                 f"peak {_bytes(peak)} at node #{at} ({escape(labels[at] if labels else '')})</text>")  # fmt: skip
    parts.append(f'<text x="{left}" y="{height - 8}" font-size="10">node 0 … {n - 1} in program order</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def bench_bars(rows: list[dict], width: int = 700) -> str:
    """Horizontal bars of warm medians with interquartile whiskers, one per timed backend."""
    rows = [r for r in rows if r.get("median_s") is not None]
    if not rows:
        return "<p>No backend was timed.</p>"
    bar, gap, left = 22, 8, 110
    height = len(rows) * (bar + gap) + 30
    top = max(r["p75_s"] for r in rows) or 1.0
    scale = (width - left - 90) / top
    parts = [f'<svg class="chart" id="bench-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="warm call medians">']  # fmt: skip
    for i, r in enumerate(rows):
        y = 10 + i * (bar + gap)
        parts += [f'<text x="{left - 6}" y="{y + bar * 0.7}" text-anchor="end" font-size="12">{escape(r["backend"])}</text>',
                  f'<rect x="{left}" y="{y}" width="{r["median_s"] * scale:.1f}" height="{bar}" fill="#4c78a8">'
                  f'<title>{r["backend"]}: median {r["median_s"] * 1e3:.3f} ms</title></rect>',
                  f'<line x1="{left + r["p25_s"] * scale:.1f}" x2="{left + r["p75_s"] * scale:.1f}" '
                  f'y1="{y + bar / 2}" y2="{y + bar / 2}" stroke="#222" stroke-width="2"/>',
                  f'<text x="{left + r["p75_s"] * scale + 6:.1f}" y="{y + bar * 0.7}" font-size="11">'
                  f'{r["median_s"] * 1e3:.3f} ms ({r["ratio_to_fastest"]:.2f}x)</text>']  # fmt: skip
    parts.append(
        f'<text x="{left}" y="{height - 6}" font-size="10">warm call median, whiskers: interquartile range</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)
