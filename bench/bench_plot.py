"""PNG plots of a benchmark run (matplotlib, a tooling dependency: bench/requirements.txt).

bench-ratios.png: per workload, each engine's time per op as a multiple of the C binding's,
at the target size (10^5 keys, else the largest measured), with the issue's targets marked.
bench-scaling.png: get and scan cost per op against the number of keys, and peak added
memory against the size of the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Tuple

from bench_engines import BASELINE
from bench_report import (
    RATIO_TARGETS,
    READS,
    TARGET_N,
    Result,
    columns_of,
    data_size_mib,
    find,
    sets_of,
    size_label,
    us,
    value_label,
)
from bench_workloads import WORKLOADS


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _no_labels() -> Any:
    from matplotlib.ticker import NullFormatter as formatter

    return formatter()


def plot_ratios(results: List[Result], path: Path) -> None:
    plt = _pyplot()
    values = sorted({v for _, v in sets_of(results)})
    cols = columns_of(results)
    targets: Dict[str, float] = dict(RATIO_TARGETS)
    fig, axes = plt.subplots(1, len(values), figsize=(6.5 * len(values), 4.8), squeeze=False)
    for ax, v in zip(axes[0], values):
        sizes = [n for n, vv in sets_of(results) if vv == v]
        n = TARGET_N if TARGET_N in sizes else max(sizes)
        width = 0.8 / len(cols)
        for i, c in enumerate(cols):
            xs, ys = [], []
            for j, w in enumerate(WORKLOADS):
                x, base = us(results, c, n, v, w), us(results, BASELINE, n, v, w)
                if x is not None and base:
                    xs.append(j + (i - (len(cols) - 1) / 2) * width)
                    ys.append(x / base)
            ax.bar(xs, ys, width, label=c)
        marked = [(j, targets[w]) for j, w in enumerate(WORKLOADS) if w in targets]
        for k, (j, limit) in enumerate(marked):
            label = "purelmdb target" if k == 0 else None
            ax.hlines(limit, j - 0.4, j + 0.4, colors="red", linestyles="dashed", label=label)
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(WORKLOADS)))
        ax.set_xticklabels(list(WORKLOADS), rotation=20)
        ax.set_ylabel(f"time per op / {BASELINE} (log)")
        ax.set_title(f"{size_label(n)} keys, {value_label(v)} values")
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_scaling(results: List[Result], path: Path) -> None:
    plt = _pyplot()
    values = sorted({v for _, v in sets_of(results)})
    cols = columns_of(results)
    panels = len(READS) + 1
    fig, axes = plt.subplots(
        len(values), panels, figsize=(5 * panels, 3.8 * len(values)), squeeze=False
    )
    for row, v in zip(axes, values):
        sizes = sorted(n for n, vv in sets_of(results) if vv == v)
        for ax, w in zip(row, READS):
            for c in cols:
                pts = [(n, us(results, c, n, v, w)) for n in sizes]
                pts = [(n, y) for n, y in pts if y is not None]
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=c)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("keys")
            ax.set_ylabel("us per op (log)")
            ax.set_title(f"{w}, {value_label(v)} values")
        ax = row[-1]
        for c in cols:
            mem_pts: List[Tuple[float, float]] = []
            for n in sizes:
                r = find(results, c, n, v)
                peak = None if r is None else r.get("memory", {}).get("peak_added_mib")
                if peak is not None:
                    mem_pts.append((data_size_mib(n, v), max(peak, 0.1)))  # log axis: no zero
            if mem_pts:
                ax.plot([p[0] for p in mem_pts], [p[1] for p in mem_pts], marker="o", label=c)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(_no_labels())  # decade labels only: readable
        ax.set_xlabel("data MiB")
        ax.set_ylabel("peak added MiB (log)")
        ax.set_title(f"peak memory vs data, {value_label(v)} values")
        row[0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(results: List[Result], out_dir: Path) -> List[Path]:
    paths = [out_dir / "bench-ratios.png", out_dir / "bench-scaling.png"]
    plot_ratios(results, paths[0])
    plot_scaling(results, paths[1])
    return paths
