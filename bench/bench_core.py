#!/usr/bin/env python3
"""Benchmark suite: purelmdb against the C binding (``lmdb``), sqlite3 and dbm.

Run by hand (it is not a test)::

    python bench/bench_core.py                                   # full run, writes docs/
    python bench/bench_core.py --sizes 1e4,1e5 --values 100      # quicker
    python bench/bench_core.py --engines lmdb,purelmdb --sizes 1e5 --values 100 --no-files

Each engine runs in its own subprocess for each workload set (number of keys x value
size), so peak memory is the engine's own. purelmdb can also run under other interpreters
(``--python pypy3``), as extra report columns. Results go to stdout, docs/bench.md and
docs/bench-*.png. See bench/README.md for the workloads and how to read the numbers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from bench_engines import ENGINE_NAMES, REPO_ROOT
from bench_report import Result, Table, all_tables, worker_lines
from bench_workloads import (
    CLOCKS,
    KEY_SIZE,
    WORKLOADS,
    WorkloadParams,
    python_description,
    run_worker,
)

DEFAULT_OUT_DIR = REPO_ROOT / "docs"

# --------------------------------------------------------------------------
# Command line


def parse_count(text: str) -> int:
    """ "1e5" -> 100000, "16k" -> 16384, "2G" -> 2 GiB, "100" -> 100."""
    t = text.strip().lower()
    for suffix, scale in (("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30)):
        if t.endswith(suffix):
            return int(float(t[:-1]) * scale)
    return int(float(t))


def parse_list(text: str) -> List[int]:
    return [parse_count(x) for x in text.split(",") if x.strip()]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--sizes", default="1e4,1e5,1e6", help="numbers of keys (default 1e4,1e5,1e6)")
    p.add_argument("--values", default="100,16k", help="value sizes in bytes (default 100,16k)")
    p.add_argument(
        "--max-data",
        default="4G",
        help="skip workload sets whose keys+values exceed this (default 4G: 10^6 x 16 KB is 16 GB)",
    )
    p.add_argument(
        "--engines", default=",".join(ENGINE_NAMES), help="comma list, also the column order"
    )
    p.add_argument(
        "--python",
        default="auto",
        help="extra interpreters (comma list) that run purelmdb as extra columns; "
        "'auto' (default): pypy3 if on PATH; 'none': only this interpreter",
    )
    p.add_argument("--txns", type=int, default=2000, help="transactions per small_txns run")
    p.add_argument("--repeat", type=int, default=5, help="best of up to k runs (default 5)")
    p.add_argument(
        "--clock",
        choices=CLOCKS,
        default="cpu",
        help="cpu (default): CPU time of the worker, steady on a shared machine; "
        "wall: elapsed time (both are kept in --json)",
    )
    p.add_argument(
        "--budget",
        type=float,
        default=2.0,
        help="stop repeating a workload once its runs took this many seconds (default 2)",
    )
    p.add_argument("--seed", type=int, default=1234, help="random.Random seed of the data")
    p.add_argument("--tmp", default=None, help="folder for the stores (default: system temp)")
    p.add_argument("--timeout", type=float, default=None, help="seconds allowed per worker")
    p.add_argument(
        "--out-dir",
        default=str(DEFAULT_OUT_DIR),
        help="where bench.md and bench-*.png go (default: the checkout's docs/)",
    )
    p.add_argument("--no-files", action="store_true", help="stdout only: no bench.md, no PNG")
    p.add_argument("--no-plot", action="store_true", help="write bench.md but no PNG")
    p.add_argument("--note", default="", help="a sentence for bench.md (e.g. about the machine)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the raw results")
    p.add_argument(
        "--from-json", default=None, metavar="IN", help="report a saved --json run, run nothing"
    )
    # Worker mode, used by the parent only.
    p.add_argument("--worker", choices=ENGINE_NAMES, help=argparse.SUPPRESS)
    p.add_argument("--result-file", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--value-size", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.engine_list = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(args.engine_list) - set(ENGINE_NAMES))
    if unknown:
        p.error(f"unknown engine(s): {', '.join(unknown)}")
    return args


def workload_params(args: argparse.Namespace, n: int, value_size: int) -> WorkloadParams:
    return WorkloadParams(
        n=n,
        value_size=value_size,
        txns=args.txns,
        repeat=args.repeat,
        budget=args.budget,
        clock=args.clock,
        seed=args.seed,
        tmp=args.tmp,
    )


# --------------------------------------------------------------------------
# Interpreters and workers


def probe_interpreter(exe: str) -> Optional[Tuple[str, str]]:
    """(implementation, "3.9.16") of an interpreter, or None if it does not run."""
    code = "import platform; print(platform.python_implementation(), platform.python_version())"
    try:
        out = subprocess.run([exe, "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or len(out.stdout.split()) != 2:
        return None
    impl, version = out.stdout.split()
    return impl, version


def extra_interpreters(spec: str) -> List[Tuple[str, str]]:
    """(column label, executable) for each extra interpreter that runs purelmdb."""
    if spec == "none":
        return []
    names = [x.strip() for x in spec.split(",") if x.strip()]
    if spec == "auto":
        names = [exe for exe in ("pypy3",) if shutil.which(exe)]
    found = []
    for name in names:
        exe = shutil.which(name) or name
        probed = probe_interpreter(exe)
        if probed is None:
            print(f"--python {name}: does not run, skipped", file=sys.stderr)
            continue
        impl, version = probed
        label = "pypy" if impl == "PyPy" else impl.lower() + ".".join(version.split(".")[:2])
        found.append((f"purelmdb@{label}", exe))
    return found


def worker_command(
    args: argparse.Namespace, exe: str, engine: str, n: int, v: int, workdir: Path
) -> List[str]:
    cmd = [exe, str(Path(__file__).resolve()), "--worker", engine]
    cmd += ["--result-file", str(workdir / "result.json"), "--tmp", str(workdir)]
    cmd += ["--n", str(n), "--value-size", str(v), "--txns", str(args.txns)]
    cmd += ["--repeat", str(args.repeat), "--budget", str(args.budget), "--seed", str(args.seed)]
    cmd += ["--clock", args.clock]
    return cmd


def run_one(args: argparse.Namespace, column: str, exe: str, engine: str, n: int, v: int) -> Result:
    """Run one worker in a folder of its own, removed afterwards even if the worker was killed."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{engine}-", dir=args.tmp))
    base: Result = {"engine": engine, "column": column, "n": n, "value_size": v}
    try:
        cmd = worker_command(args, exe, engine, n, v, workdir)
        proc = subprocess.run(cmd, timeout=args.timeout)
        result_file = workdir / "result.json"
        if proc.returncode != 0 or not result_file.exists():
            return dict(base, status=f"worker exited with {proc.returncode}")
        return dict(json.loads(result_file.read_text()), column=column)
    except subprocess.TimeoutExpired:
        return dict(base, status=f"timed out after {args.timeout}s")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def plan(args: argparse.Namespace) -> Tuple[List[Tuple[int, int]], List[str]]:
    """Workload sets to run, and notes on the ones skipped for size."""
    cap = parse_count(args.max_data)
    sets, skipped = [], []
    for n in parse_list(args.sizes):
        for v in parse_list(args.values):
            if n * (KEY_SIZE + v) > cap:
                skipped.append(f"{n:,} keys x {v} B skipped: data over --max-data {args.max_data}")
            else:
                sets.append((n, v))
    return sets, skipped


def run_all(args: argparse.Namespace, sets: List[Tuple[int, int]]) -> List[Result]:
    columns = []
    for engine in args.engine_list:
        columns.append((engine, sys.executable, engine))
        if engine == "purelmdb":  # the other interpreters' columns sit beside CPython's
            columns += [(label, exe, engine) for label, exe in extra_interpreters(args.python)]
    results = []
    for n, v in sets:
        for column, exe, engine in columns:  # engines interleave, so drift hits them alike
            print(f"running {column} n={n:,} value={v} ...", file=sys.stderr, flush=True)
            results.append(run_one(args, column, exe, engine, n, v))
    return results


# --------------------------------------------------------------------------
# Machine description


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _git(*cmd: str) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *cmd], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def machine_info(results: List[Result]) -> Dict[str, str]:
    info: Dict[str, str] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    }
    os_release = dict(
        line.split("=", 1) for line in _read("/etc/os-release").splitlines() if "=" in line
    )
    pretty = os_release.get("PRETTY_NAME", "").strip('"')
    info["os"] = f"{pretty + ', ' if pretty else ''}{platform.platform()}"
    cpuinfo = _read("/proc/cpuinfo")
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
        platform.processor() or "unknown",
    )
    virtual = " (virtual machine)" if " hypervisor" in cpuinfo else ""
    info["cpu"] = f"{model}, {os.cpu_count()} logical CPUs{virtual}"
    mem = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in _read("/proc/meminfo").splitlines()
            if ln.startswith("MemTotal")
        ),
        "",
    )
    if mem:
        info["memory"] = f"{int(mem.split()[0]) / (1 << 20):.1f} GiB"
    pythons: Dict[str, None] = {python_description(): None}
    for r in results:
        if r.get("python"):
            pythons.setdefault(r["python"], None)
    info["python"] = "; ".join(pythons)
    for r in results:
        for key, label in (("lmdb", "lmdb package"), ("sqlite3", "sqlite3"), ("dbm", "dbm")):
            if r["engine"] == key and r.get("info") and label not in info:
                i = r["info"]
                info[label] = {
                    "lmdb": f"{i.get('version')} (LMDB {i.get('lmdb_lib')})",
                    "sqlite3": f"SQLite {i.get('version')}",
                    "dbm": str(i.get("module")),
                }[key]
        if r["engine"] == "purelmdb" and r.get("info") and "purelmdb" not in info:
            commit = _git("rev-parse", "--short", "HEAD")
            dirty = (
                " + uncommitted changes in src/"
                if _git("status", "--porcelain", "--", "src")
                else ""
            )
            info["purelmdb"] = f"{r['info'].get('version')} (git {commit or '?'}{dirty})"
    try:
        import matplotlib

        info["matplotlib"] = matplotlib.__version__
    except ImportError:
        info["matplotlib"] = "not installed (no plot)"
    return info


# --------------------------------------------------------------------------
# Output


def text_report(
    machine: Dict[str, str],
    params: str,
    results: List[Result],
    tables: List[Table],
    notes: List[str],
) -> str:
    lines = [f"{k + ':':<14} {v}" for k, v in machine.items()]
    lines.append(f"{'params:':<14} {params}")
    lines += [""] + worker_lines(results) + notes + [""]
    for t in tables:
        lines += [t.text(), ""]
    lines += [f"  {name:<12} {desc}" for name, desc in WORKLOADS.items()]
    return "\n".join(lines)


def display_command(argv: Sequence[str]) -> str:
    """The command line for bench.md, without --note (its text is printed anyway)."""
    shown: List[str] = []
    skip = False
    for a in argv:
        if skip or a.startswith("--note="):
            skip = False
            continue
        if a == "--note":
            skip = True
            continue
        shown.append(a)
    return " ".join(shlex.quote(a) for a in ["python", "bench/bench_core.py", *shown])


def markdown_report(
    machine: Dict[str, str],
    params: str,
    command: str,
    results: List[Result],
    tables: List[Table],
    notes: List[str],
    note: str,
    plots: List[Path],
) -> str:
    out = [
        "# Benchmarks",
        "",
        f"Generated by `{command}` (bench/bench_core.py; method and options in "
        "[bench/README.md](../bench/README.md)). Do not edit by hand: rerun the command.",
        "",
    ]
    if note:
        out += [note, ""]
    out += ["## Machine", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in machine.items()]
    out += [f"| parameters | {params} |", ""]
    out += ["Workers:", ""] + [f"- {line}" for line in worker_lines(results) + notes] + [""]
    out += ["## Workloads", "", "| row | what is timed |", "|---|---|"]
    out += [f"| `{k}` | {v} |" for k, v in WORKLOADS.items()]
    out += [
        "",
        "Cells: microseconds per operation and, in brackets, the ratio to the C binding "
        "(`lmdb`); `cpu` is the CPU time of the worker process (user + system), `wall` the "
        "elapsed time (see `clock` in the parameters). `file MiB`: space the store allocated after `load_random`. `peak +MiB`: "
        "peak RSS during the workloads over the RSS once the data set was built (it includes "
        "the touched pages of a memory-mapped store). `heap +MiB`: the same for anonymous "
        "memory only (Python objects, caches, malloc), sampled after each workload.",
        "",
    ]
    targets = [t for t in tables if t.title.startswith("Targets")]
    sets = [t for t in tables if t.title[0].isdigit()]
    growth = [t for t in tables if t.title.startswith("Cost per op")]
    memory = [t for t in tables if t.title.startswith("Peak memory")]
    for heading, group in (
        ("## Targets of the performance issue", targets),
        ("## Results by workload set", sets),
        ("## Cost growth with size", growth),
        ("## Memory vs data size", memory),
    ):
        if group:
            out += [heading, ""]
            for t in group:
                out += [t.markdown(), ""]
    if plots:
        out += ["## Plots", ""]
        out += [f"![{p.stem}]({p.name})" for p in plots]
        out.append("")
    return "\n".join(out)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.worker:
        result = run_worker(args.worker, workload_params(args, args.n, args.value_size))
        Path(args.result_file).write_text(json.dumps(result))
        return 0

    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        results, notes, command = saved["results"], saved["notes"], saved["command"]
        params, machine = saved["params"], saved["machine"]
        args.note = args.note or saved.get("note", "")
    else:
        sets, notes = plan(args)
        command = display_command(argv if argv is not None else sys.argv[1:])
        params = (
            f"clock={args.clock} key_size={KEY_SIZE} txns={args.txns} repeat={args.repeat} "
            f"budget={args.budget}s seed={args.seed}"
        )
        results = run_all(args, sets)
        machine = machine_info(results)
    tables = all_tables(results)
    print(text_report(machine, params, results, tables, notes))

    if args.json:
        payload = {
            "machine": machine,
            "params": params,
            "command": command,
            "note": args.note,
            "notes": notes,
            "results": results,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    if not args.no_files:
        out_dir = Path(args.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        plots: List[Path] = []
        if not args.no_plot:
            try:
                from bench_plot import write_plots

                plots = write_plots(results, out_dir)
            except ImportError as exc:
                print(f"no plot ({exc}); pip install -r bench/requirements.txt", file=sys.stderr)
        md = markdown_report(machine, params, command, results, tables, notes, args.note, plots)
        (out_dir / "bench.md").write_text(md)
        print(
            f"\nwrote {', '.join(str(p) for p in [out_dir / 'bench.md', *plots])}", file=sys.stderr
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
