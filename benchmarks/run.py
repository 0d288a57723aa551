"""The paltest benchmark suite: one command, JSON results and a markdown table.

Usage::

    python benchmarks/run.py                 # full suite on NumPy (tens of minutes)
    python benchmarks/run.py --quick         # smaller sizes and runs (a few minutes)
    python benchmarks/run.py --xp cupy       # on the GPU
    python benchmarks/run.py --only overhead peers

Sections (see ``benchmarks/README.md`` for what each measures and the goals):

``overhead``
    time of one PAL step / (time of ``value_and_grad`` + time of ``value``) on dense
    least squares with 10^3 ... 10^7 parameters and on RBF-kernel logistic regression;
``peers``
    per-step wall time and evaluations of PAL against SGD, Adam, SLS and the exact line
    search on ``mf-rank10`` and ``ijcnn``;
``target``
    iterations and wall time of PAL and SLS to reach a training loss (1e-10 on rank-10
    matrix factorization in float64; a fixed loss on mushrooms);
``figures``
    wall time and peak memory of the Figure 8 protocol and of one ijcnn run, through the
    ``paltest`` command line (in a child process, measured with ``/usr/bin/time -v`` or
    ``getrusage``).

The LIBSVM files are read from the directory in ``PALTEST_DATA``; problems that need a
missing file are skipped with a message. Each section's timings interleave the compared
calls and report medians over repeats, so ratios are measured within one run.

Results go to ``benchmarks/results/<xp>[-quick].json`` and into the table of
``benchmarks/README.md`` (between the ``results`` markers).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from paltest import PAL, backend
from paltest.optimizers import registry

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
PEERS = ("sgd", "adam", "sls", "exact")
GOAL_RATIO = 1.05
#: The dense least-squares matrix of one overhead row at most: 10^7 x 100 in float64, or
#: 45 % of the machine's memory when that is less (then fewer rows).
BYTES_PER_PROBLEM = 8.5e9
#: Kernel memory budget of the timed 35-epoch ijcnn run (float64, peak RSS goal 8 GB).
IJCNN_BUDGET = 7.75e9
#: Rows of the extra 10^7-parameter row with a cheap objective (the earlier default).
CHEAP_ROWS = 18


# -- helpers --------------------------------------------------------------------------

def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def make_sync(xp: Any):
    """A function that waits until an output is computed (reads one element on a GPU)."""
    def sync(out: Any) -> None:
        while isinstance(out, tuple):
            out = out[0]
        if hasattr(out, "shape"):
            backend.to_host(xp.reshape(out, (-1,))[:1])
    return sync


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(), "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "numpy": np.__version__,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    try:
        with open("/proc/meminfo") as f:
            info["memory_gb"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        import threadpoolctl

        info["blas"] = [{k: p.get(k) for k in ("internal_api", "num_threads", "version")}
                        for p in threadpoolctl.threadpool_info()]
    except ImportError:
        pass
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                             capture_output=True, text=True, check=False)
        info["git_commit"] = out.stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "paltest", "problems"],
                               cwd=HERE, capture_output=True, text=True, check=False)
        info["git_dirty"] = bool(dirty.stdout.strip())
    except OSError:
        pass
    return info


def gpu_name(xp_name: str) -> str | None:
    if xp_name != "cupy":
        return None
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def interleaved(fns: dict[str, Any], repeat: int, sync: Any) -> dict[str, float]:
    """Median seconds of each function; calls alternate so noise hits all alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            sync(fn())
            times[key].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def data_available(name: str) -> str | None:
    """Why problem ``name`` can't be built from local files, or None."""
    from problems import datasets

    path = os.environ.get("PALTEST_DATA")
    if not path:
        return f"{name}: skipped, PALTEST_DATA is not set"
    files = datasets.DATASETS[name].files
    if not any((Path(path) / f).exists() for f in files):
        return f"{name}: skipped, none of {list(files)} is in PALTEST_DATA"
    return None


def build(name: str, xp_name: str, dtype: str = "float64", **options: Any) -> Any:
    import problems

    return problems.get(name, xp=xp_name, dtype=dtype, download=False, **options) \
        if name in ("mushrooms", "ijcnn") else problems.get(name, xp=xp_name, dtype=dtype)


# -- 1. overhead ----------------------------------------------------------------------

def least_squares(xp: Any, n: int, m: int, dtype: str) -> tuple[Any, Any, Any]:
    rng = np.random.default_rng(0)
    A = rng.standard_normal((m, n))
    A /= np.sqrt(n)  # in place: one host copy of the matrix at a time
    A = backend.from_host(A, xp, dtype=dtype)
    y = backend.from_host(rng.standard_normal(m), xp, dtype=dtype)

    def value(theta: Any) -> Any:
        r = A @ theta - y
        return xp.vecdot(r, r) / (2 * m)

    def value_and_grad(theta: Any) -> tuple[Any, Any]:
        r = A @ theta - y
        return xp.vecdot(r, r) / (2 * m), (r @ A) / m

    theta = backend.from_host(rng.standard_normal(n) * 0.01, xp, dtype=dtype)
    return value_and_grad, value, theta


def overhead_row(xp: Any, sync: Any, label: str, vg: Any, f: Any, theta: Any,
                 repeat: int, **meta: Any) -> dict[str, Any]:
    opt = PAL()
    state = opt.init(theta)
    for _ in range(2):  # warm up; a nonzero direction state (beta * buf is computed)
        theta, state, _ = opt.step(theta, state, vg, f)
    med = interleaved({"value_and_grad": lambda: vg(theta), "value": lambda: f(theta),
                       "pal_step": lambda: opt.step(theta, state, vg, f)}, repeat, sync)
    floor = med["value_and_grad"] + med["value"]
    row = {"problem": label, **meta, "repeat": repeat,
           **{f"{k}_s": v for k, v in med.items()}, "ratio": med["pal_step"] / floor}
    log(f"overhead {label} {meta}: ratio {row['ratio']:.3f}")
    return row


def bench_overhead(xp_name: str, quick: bool) -> dict[str, Any]:
    xp = backend.resolve_namespace(xp_name)
    sync = make_sync(xp)
    sizes = [10**3, 10**4, 10**5, 10**6] if quick else [10**3, 10**4, 10**5, 10**6, 10**7]
    rows_default = 100  # the paper's batch size: one batch of 100 samples
    phys = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    budget = min(BYTES_PER_PROBLEM, 0.45 * phys)
    out = []
    # every size with 100 rows (memory permitting), then 10^7 with a cheap 18-row
    # objective: the ratio depends on the objective's cost per parameter, not on n
    cases = [(n, rows_default) for n in sizes] + ([] if quick else [(10**7, CHEAP_ROWS)])
    for n, m in cases:
        if m * n * 8 > budget:
            m = max(8, int(budget // (8 * n)))
        repeat = 5 if n >= 10**7 else 21 if n >= 10**6 else 31 if quick else 101
        vg, f, theta = least_squares(xp, n, m, "float64")
        out.append(overhead_row(xp, sync, "least-squares", vg, f, theta, repeat,
                                n_params=n, rows=m, dtype="float64"))
        del vg, f, theta
    for name in ("mushrooms", "ijcnn"):
        why = data_available(name)
        if why:
            log(why)
            out.append({"problem": name, "skipped": why})
            continue
        prob = build(name, xp_name)
        batch = next(iter(prob.batches(0, 0, 100)))
        vg, f = prob.bind(batch)
        out.append(overhead_row(xp, sync, name, vg, f, prob.init_params(0),
                                31 if quick else 61, n_params=prob.n_params, rows=100,
                                dtype="float64", mode=prob.mode))
        del prob
    return {"rows": out, "goal": f"ratio <= {GOAL_RATIO} for >= 1e6 parameters"}


# -- 2. peers -------------------------------------------------------------------------

def peer_steps(prob: Any, names: tuple[str, ...], n_steps: int, sync: Any
               ) -> dict[str, dict[str, float]]:
    """Median step time and evaluations of each optimizer, the optimizers interleaved.

    Every optimizer follows its own trajectory over the same batches; step ``i`` of all
    of them runs before step ``i + 1`` of any (in alternating order), so slow phases of
    a shared machine hit all of them alike. Each step gets its own copy of the batch
    array, so no optimizer reuses kernel rows cached for another.
    """
    xp = prob.xp
    opts = {n: registry.make(n, n_batches_per_epoch=prob.n_train // 100) for n in names}
    thetas = {n: prob.init_params(0) for n in names}
    states = {n: opts[n].init(thetas[n]) for n in names}
    batches = [b for e in range(10) for b in prob.batches(e, 0, 100)][: n_steps + 2]
    times: dict[str, list[float]] = {n: [] for n in names}
    n_fun: dict[str, list[float]] = {n: [] for n in names}
    n_grad: dict[str, list[float]] = {n: [] for n in names}
    for i, batch in enumerate(batches):
        for n in (names if i % 2 == 0 else names[::-1]):
            vg, f = prob.bind(xp.asarray(batch, copy=True))
            t0 = time.perf_counter()
            thetas[n], states[n], info = opts[n].step(thetas[n], states[n], vg, f)
            sync(thetas[n])
            if i >= 2:  # the first steps warm up caches and the allocator
                times[n].append(time.perf_counter() - t0)
                n_fun[n].append(backend.to_float(info.n_fun))
                n_grad[n].append(backend.to_float(info.n_grad))
    return {n: {"step_s": statistics.median(times[n]), "n_fun": float(np.mean(n_fun[n])),
                "n_grad": float(np.mean(n_grad[n])), "n_steps": len(times[n])}
            for n in names}


def bench_peers(xp_name: str, quick: bool) -> dict[str, Any]:
    xp = backend.resolve_namespace(xp_name)
    sync = make_sync(xp)
    out = []
    for pname, n_steps in (("mf-rank10", 40 if quick else 200), ("ijcnn", 6 if quick else 30)):
        if pname == "ijcnn" and (why := data_available(pname)):
            log(why)
            out.append({"problem": pname, "skipped": why})
            continue
        prob = build(pname, xp_name)
        res = peer_steps(prob, ("pal", *PEERS), n_steps, sync)
        pal = res["pal"]
        for name in PEERS:
            r = res[name]
            out.append({
                "problem": pname, "peer": name, "n_steps": r["n_steps"],
                "pal_step_s": pal["step_s"], "peer_step_s": r["step_s"],
                "pal_evals": pal["n_fun"] + pal["n_grad"], "peer_evals": r["n_fun"] + r["n_grad"],
                "wall_ratio": pal["step_s"] / r["step_s"],
                "eval_ratio": (pal["n_fun"] + pal["n_grad"]) / (r["n_fun"] + r["n_grad"]),
            })
            log(f"peers {pname} PAL/{name}: wall {out[-1]['wall_ratio']:.2f}, "
                f"evals {out[-1]['eval_ratio']:.2f}")
        del prob
    return {"rows": out, "evals": "n_fun + n_grad per step (forward + backward passes)"}


# -- 3. time to target ----------------------------------------------------------------

def bench_target(xp_name: str, quick: bool) -> dict[str, Any]:
    from paltest.testbed.runner import run

    cases = [("mf-rank10", 1e-10, 100 if quick else 400),
             ("mushrooms", 1e-3, 15 if quick else 35)]
    out = []
    for pname, target, epochs in cases:
        if pname == "mushrooms" and (why := data_available(pname)):
            log(why)
            out.append({"problem": pname, "skipped": why})
            continue
        prob = build(pname, xp_name)
        for opt in ("pal", "sls"):
            r = run(prob, opt, epochs=epochs, batch_size=100, seed=0, problem_name=pname)
            ep = r.epochs
            hit = np.flatnonzero(ep["train_loss"] <= target)
            row = {"problem": pname, "optimizer": opt, "target": target, "epochs_run": epochs,
                   "final_loss": float(ep["train_loss"][-1]), "reached": bool(hit.size)}
            if hit.size:
                k = int(hit[0])
                row.update(epoch=k, iterations=int(ep["n_steps"][k]),
                           evaluations=int(ep["n_fun"][k] + ep["n_grad"][k]),
                           wall_s=float(ep["wall_time"][k]))
            out.append(row)
            log(f"target {pname} {opt}: {row}")
        del prob
    return {"rows": out, "protocol": "batch size 100, seed 0, default hyperparameters, "
                                    "float64; wall time includes the per-epoch logging"}


# -- 4. whole figures -----------------------------------------------------------------

def timed_child(cmd: list[str], timeout: float) -> dict[str, Any]:
    """Wall time, exit status and peak RSS (GB) of ``cmd`` and its children."""
    timev = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time")
                                     else None)
    full = [timev, "-v", *cmd] if timev else cmd
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"cmd": cmd, "timed_out": True, "timeout_s": timeout}
    wall = time.perf_counter() - t0
    peak = None
    for line in proc.stderr.splitlines():
        if "Maximum resident set size" in line:
            peak = int(line.split()[-1]) * 1024 / 1e9  # KiB -> GB (10^9 bytes)
    if peak is None:  # getrusage: the largest child so far (exact when it is the largest)
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        peak = after * 1024 / 1e9 if after > before else None  # Linux: KiB
    tail = [ln for ln in proc.stderr.splitlines() if not ln.startswith("\t")][-5:]
    return {"cmd": cmd, "returncode": proc.returncode, "wall_s": wall, "peak_rss_gb": peak,
            "stderr_tail": tail if proc.returncode else []}


def bench_figures(xp_name: str, quick: bool, timeout: float) -> dict[str, Any]:
    if importlib.util.find_spec("paltest.cli") is None:
        msg = "paltest.cli does not exist yet: the figure protocols were not timed"
        log(msg)
        return {"rows": [], "skipped": msg}
    cli = [sys.executable, "-m", "paltest.cli"]
    epochs = 1 if quick else 35
    scale = " --quick" if quick else ""
    # (what, the data it needs, the command's arguments, goal). The ijcnn run is the
    # fastest setting under 8 GB in float64: the budget leaves 0.25 GB for the
    # interpreter and the data; it stores the 6.27 GB train kernel and 6,000 of the
    # 7,000 test rows (1.34 GB); the other test rows are computed per epoch.
    cases = [
        ("figure 8" + (scale or " (full protocol)"), (),
         ["figure", "8", "--jobs", "2", *scale.split()], "< 120 s on 2 cores (full protocol)"),
        ("figure 9" + (scale or " (full protocol: mushrooms and ijcnn, float32)"),
         ("mushrooms", "ijcnn"), ["figure", "9", "--jobs", "2", *scale.split()], "—"),
        (f"ijcnn PAL run, {epochs} epoch(s), float64, memory budget {IJCNN_BUDGET / 1e9:g} GB",
         ("ijcnn",), ["run", "ijcnn", "pal", "--epochs", str(epochs), "--dtype", "float64",
                      "--po", f"memory_budget={IJCNN_BUDGET:g}"], "35 epochs < 60 s and < 8 GB"),
    ]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (what, data, args, goal) in enumerate(cases):
            why = next((w for w in map(data_available, data) if w), None)
            if why:
                out.append({"what": what, "skipped": why})
                continue
            cmd = [*cli, *args, "--out", f"{tmp}/{i}", "--no-progress", "--xp", xp_name]
            out.append({"what": what, **timed_child(cmd, timeout), "goal": goal})
            log(f"figures: {out[-1]}")
    return {"rows": out}


# -- 5. GPU speed-up --------------------------------------------------------------------

def bench_speedup(xp_name: str, quick: bool) -> dict[str, Any]:
    """Seconds per epoch of the Figure 9 protocol (PAL, batch 100) on NumPy and on ``xp``."""
    from paltest.testbed.runner import run

    out = []
    for pname in ("ijcnn", "mushrooms"):
        if why := data_available(pname):
            log(why)
            out.append({"problem": pname, "skipped": why})
            continue
        row: dict[str, Any] = {"problem": pname, "epochs": 1 if quick else 3}
        for name in ("numpy", xp_name):
            prob = build(pname, name)
            t0 = time.perf_counter()
            r = run(prob, "pal", epochs=row["epochs"], batch_size=100, seed=0,
                    problem_name=pname)
            row[f"{name}_epoch_s"] = float(np.median(r.epochs["epoch_time"][1:]))
            row[f"{name}_total_s"] = time.perf_counter() - t0
            row[f"{name}_mode"] = prob.mode
            row[f"{name}_final_loss"] = float(r.epochs["train_loss"][-1])
            del prob
        row["speedup"] = row["numpy_epoch_s"] / row[f"{xp_name}_epoch_s"]
        out.append(row)
        log(f"speedup {row}")
    return {"rows": out}


# -- report ---------------------------------------------------------------------------

def fmt(x: Any, digits: int = 3) -> str:
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return "" if x is None else str(x)


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [f"Command: `{res['command']}`  ",
             f"Machine: {m.get('processor')}, {m.get('cpu_count')} cores, "
             f"{m.get('memory_gb')} GB, load average at start {m.get('load_average')}, "
             f"NumPy {m.get('numpy')}, xp `{res['xp']}`"
             + (f", GPU {res['gpu']}" if res.get("gpu") else "")
             + f", commit {m.get('git_commit')}{' + local changes' if m.get('git_dirty') else ''}"
             f", {m.get('date')}. All times are medians.", ""]
    sec = res["sections"]
    if "overhead" in sec:
        lines += ["**PAL step overhead** (step / (value_and_grad + value); goal <= 1.05 for "
                  ">= 1e6 parameters)", "",
                  "| problem | parameters | rows | value_and_grad | value | PAL step | ratio |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for r in sec["overhead"]["rows"]:
            if "skipped" in r:
                lines.append(f"| {r['problem']} | {r['skipped']} | | | | | |")
                continue
            lines.append(f"| {r['problem']} | {r['n_params']:,} | {r['rows']} | "
                         f"{r['value_and_grad_s'] * 1e3:.3g} ms | {r['value_s'] * 1e3:.3g} ms | "
                         f"{r['pal_step_s'] * 1e3:.3g} ms | {r['ratio']:.3f} |")
        lines.append("")
    if "peers" in sec:
        lines += ["**PAL against its peers, per step** (batch 100; evaluations = forward + "
                  "backward passes)", "",
                  "| problem | peer | PAL step | peer step | wall PAL/peer | evals PAL | "
                  "evals peer | evals PAL/peer |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in sec["peers"]["rows"]:
            if "skipped" in r:
                lines.append(f"| {r['problem']} | {r['skipped']} | | | | | | |")
                continue
            lines.append(f"| {r['problem']} | {r['peer']} | {r['pal_step_s'] * 1e3:.3g} ms | "
                         f"{r['peer_step_s'] * 1e3:.3g} ms | {r['wall_ratio']:.2f} | "
                         f"{r['pal_evals']:.3g} | {r['peer_evals']:.3g} | "
                         f"{r['eval_ratio']:.2f} |")
        lines.append("")
    if "target" in sec:
        lines += ["**Time to target** (batch 100, seed 0, default hyperparameters, float64)",
                  "", "| problem | optimizer | target | epoch | iterations | evaluations | "
                  "wall | final loss |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in sec["target"]["rows"]:
            if "skipped" in r:
                lines.append(f"| {r['problem']} | {r['skipped']} | | | | | | |")
                continue
            if r["reached"]:
                lines.append(f"| {r['problem']} | {r['optimizer']} | {r['target']:g} | "
                             f"{r['epoch']} | {r['iterations']} | {r['evaluations']} | "
                             f"{r['wall_s']:.3g} s | {r['final_loss']:.3g} |")
            else:
                lines.append(f"| {r['problem']} | {r['optimizer']} | {r['target']:g} | "
                             f"not in {r['epochs_run']} | | | | {r['final_loss']:.3g} |")
        lines.append("")
    if "figures" in sec:
        f = sec["figures"]
        lines += ["**Whole protocols** (child process; peak RSS from `/usr/bin/time -v`)", ""]
        if f.get("skipped"):
            lines += [f"Not measured: {f['skipped']}.", ""]
        else:
            lines += ["| what | wall | peak RSS | status | goal |", "|---|---:|---:|---|---|"]
            for r in f["rows"]:
                if "skipped" in r:
                    lines.append(f"| {r['what']} | | | {r['skipped']} | |")
                elif r.get("timed_out"):
                    lines.append(f"| {r['what']} | > {r['timeout_s']:.0f} s | | timed out | "
                                 f"{r['goal']} |")
                else:
                    status = "ok" if r["returncode"] == 0 else f"exit {r['returncode']}"
                    lines.append(f"| {r['what']} | {r['wall_s']:.1f} s | "
                                 f"{fmt(r['peak_rss_gb'])} GB | {status} | {r['goal']} |")
            lines.append("")
    if "speedup" in sec:
        lines += [f"**Speed-up of `{res['xp']}` over NumPy** (PAL, batch 100, s per epoch)", "",
                  "| problem | NumPy | this xp | speed-up |", "|---|---:|---:|---:|"]
        for r in sec["speedup"]["rows"]:
            if "skipped" in r:
                lines.append(f"| {r['problem']} | {r['skipped']} | | |")
            else:
                lines.append(f"| {r['problem']} | {r['numpy_epoch_s']:.3g} | "
                             f"{r[res['xp'] + '_epoch_s']:.3g} | {r['speedup']:.1f} |")
        lines.append("")
    return "\n".join(lines)


def write_readme(res: dict[str, Any], key: str) -> None:
    text = README.read_text() if README.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text:
        text += f"\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    body, tail = rest.split(END, 1)
    blocks = {}
    for chunk in body.split("<!-- run:")[1:]:
        name, _, content = chunk.partition("-->")
        blocks[name.strip()] = content.split("<!-- /run -->")[0].strip("\n")
    blocks[key] = f"### `{key}`\n\n{markdown(res)}"
    new = "\n".join(f"<!-- run: {k} -->\n{v}\n<!-- /run -->" for k, v in sorted(blocks.items()))
    README.write_text(f"{head}{START}\n{new}\n{END}{tail}")


SECTIONS = ("overhead", "peers", "target", "figures", "speedup")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes and shorter runs")
    p.add_argument("--xp", default="numpy", choices=("numpy", "cupy", "array_api_strict"))
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=None,
                   help="sections to run (default: all; speedup only when --xp is not numpy)")
    p.add_argument("--out", default=str(RESULTS), help="folder for the JSON results")
    p.add_argument("--figure-timeout", type=float, default=1800.0,
                   help="seconds allowed to each whole-protocol child process")
    p.add_argument("--no-readme", action="store_true", help="don't update README.md")
    args = p.parse_args(argv)
    if args.only is None:
        args.only = [s for s in SECTIONS if s != "speedup" or args.xp != "numpy"]
    key = args.xp + ("-quick" if args.quick else "")
    res: dict[str, Any] = {
        "command": "python benchmarks/run.py " + " ".join(argv if argv is not None
                                                          else sys.argv[1:]),
        "xp": args.xp, "quick": args.quick, "machine": machine(), "gpu": gpu_name(args.xp),
        "sections": {},
    }
    for name in SECTIONS:
        if name not in args.only:
            continue
        log(f"section {name}")
        t0 = time.perf_counter()
        if name == "overhead":
            res["sections"][name] = bench_overhead(args.xp, args.quick)
        elif name == "peers":
            res["sections"][name] = bench_peers(args.xp, args.quick)
        elif name == "target":
            res["sections"][name] = bench_target(args.xp, args.quick)
        elif name == "figures":
            res["sections"][name] = bench_figures(args.xp, args.quick, args.figure_timeout)
        else:
            res["sections"][name] = bench_speedup(args.xp, args.quick)
        res["sections"][name]["section_s"] = time.perf_counter() - t0
    res["machine"]["load_average_end"] = (list(os.getloadavg())
                                          if hasattr(os, "getloadavg") else None)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{key}.json"
    path.write_text(json.dumps(res, indent=1, default=str) + "\n")
    log(f"wrote {path}")
    if not args.no_readme:
        write_readme(res, key)
        log(f"updated {README}")
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
