"""Step overhead at the floor: paltest's steps against plain NumPy loops (issue 14).

On ``mf-rank10`` (one batch of 100, float64) and on a 100-row batch of the mushrooms
kernel problem (float64; needs ``PALTEST_DATA``, skipped with a message otherwise) this
times, interleaved (round-robin over the contestants, median over the rounds):

* the evaluations alone, one ``value_and_grad`` plus one ``value``;
* a plain NumPy PAL loop written here (Algorithm 2 with paltest's defaults, Python floats
  for the scalars) and ``paltest.PAL().step``;
* a plain NumPy SGD loop and ``paltest.SGD().step``;
* Adam, RMSProp, SGDHD, ALIG and COCOBBackprop (defaults), each against a plain NumPy
  loop of its own update rule (the update only; the library's step also builds its
  record and guards against non-finite values).

Before timing, every plain loop is checked to follow the library's trajectory to rounding
(a few steps from the same start, relative error at most ``k·eps``). Then it times
``paltest figure 8 --out <tmp>`` from the command line (one child process, wall time),
and ``paltest figure 8 --jobs 2`` once more by stage (imports, the selection's rounds,
the final runs, loading, the report, the plots; ``--jobs N`` for another count).

Usage::

    PALTEST_DATA=/path/to/libsvm python benchmarks/floor.py [--quick]

Writes ``benchmarks/results/floor[-quick].json`` and ``.md`` (the table) and prints the
table. The load average (``/proc/loadavg``) is recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# One BLAS thread: on a shared machine OpenBLAS threads that wait for each other make
# small products up to 50x slower at random (see the README); both sides use the same.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import paltest  # noqa: E402
import problems  # noqa: E402

HERE = Path(__file__).resolve().parent
EPS = float(np.finfo(np.float64).eps)


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:  # pragma: no cover - not Linux
        return "n/a"


# -- plain NumPy loops: one step each, state in a dict, Python floats for scalars --------
def plain_pal(vg, f, theta, st, mu=1.0, alpha=1.0 / 0.6, beta=0.4, s_max=10.0**0.5,
              eps=1e-10):
    l0, g = vg(theta)
    l0 = float(l0)
    buf = beta * st["buf"] + g
    n = float(np.linalg.norm(buf)) or eps
    b = -float(g @ buf) / n
    l_mu = float(f(theta - (mu / n) * buf))
    a = (l_mu - l0 - b * mu) / (mu * mu)
    if b < 0 and a > 0:
        s = -alpha * b / (2.0 * a)
    elif b < 0:
        s = mu
    else:
        s = 0.0
    s = min(s, s_max)
    st["buf"] = buf
    return theta - (s / n) * buf if s > 0 else theta


def plain_sgd(vg, f, theta, st, lr=0.1):
    _, g = vg(theta)
    return theta - lr * g


def plain_adam(vg, f, theta, st, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    _, g = vg(theta)
    t = st["t"] = st["t"] + 1.0
    m = st["m"] = b1 * st["m"] + (1.0 - b1) * g
    v = st["v"] = b2 * st["v"] + (1.0 - b2) * (g * g)
    return theta - lr * (m / (1.0 - b1**t)) / (np.sqrt(v / (1.0 - b2**t)) + eps)


def plain_rmsprop(vg, f, theta, st, lr=1e-2, rho=0.9, eps=1e-8):
    _, g = vg(theta)
    sq = st["sq"] = rho * st["sq"] + (1.0 - rho) * (g * g)
    return theta - lr * (g / (np.sqrt(sq) + eps))


def plain_sgdhd(vg, f, theta, st, hypergrad_lr=1e-3):
    _, g = vg(theta)
    lr = st["lr"] = st["lr"] + hypergrad_lr * float(g @ st["d"])
    st["d"] = g
    return theta - lr * g


def plain_alig(vg, f, theta, st, max_lr=0.1, momentum=0.9, delta=1e-5):
    loss, g = vg(theta)
    gamma = min(float(loss) / (float(g @ g) + delta), max_lr)
    buf = st["buf"] = momentum * st["buf"] - gamma * g
    return theta - gamma * g + momentum * buf


def plain_cocob(vg, f, theta, st, alpha=100.0):
    _, g = vg(theta)
    abs_g = np.abs(g)
    big_l = st["L"] = np.maximum(st["L"], abs_g)
    g_sum = st["G"] = st["G"] + g
    a_sum = st["A"] = st["A"] + abs_g
    reward = st["R"] - g * st["w"]
    reward = st["R"] = np.where(reward > 0, reward, 0.0)
    w = -g_sum / (big_l * np.maximum(a_sum + big_l, alpha * big_l)) * (reward + big_l)
    theta = theta - st["w"] + w
    st["w"] = w
    return theta


def plain_state(name: str, theta: np.ndarray) -> dict:
    z = np.zeros_like(theta)
    return {"pal": {"buf": z}, "sgd": {}, "adam": {"t": 0.0, "m": z, "v": z},
            "rmsprop": {"sq": z}, "sgdhd": {"lr": 1e-3, "d": z}, "alig": {"buf": z},
            "cocob": {"L": np.full_like(theta, 1e-8), "G": z, "A": z, "R": z, "w": z}}[name]


PLAIN = {"pal": plain_pal, "sgd": plain_sgd, "adam": plain_adam, "rmsprop": plain_rmsprop,
         "sgdhd": plain_sgdhd, "alig": plain_alig, "cocob": plain_cocob}
LIBRARY = {"pal": paltest.PAL, "sgd": paltest.SGD, "adam": paltest.Adam,
           "rmsprop": paltest.RMSProp, "sgdhd": paltest.SGDHD, "alig": paltest.ALIG,
           "cocob": paltest.COCOBBackprop}


def check_trajectories(vg, f, theta0, steps: int = 5) -> dict[str, float]:
    """Each plain loop follows the library's trajectory to rounding: the largest error
    relative to the largest parameter is at most ``16 · steps · eps`` over ``steps``
    steps (a few roundings per step, each at most eps relative, not compounding more
    than linearly over so few steps on these well-scaled problems)."""
    out = {}
    for name, plain in PLAIN.items():
        opt = LIBRARY[name]()
        th_lib, state = theta0, opt.init(theta0)
        th_plain, st = theta0, plain_state(name, theta0)
        worst = 0.0
        for _ in range(steps):
            th_lib, state, _ = opt.step(th_lib, state, vg, f)
            th_plain = plain(vg, f, th_plain, st)
            scale = float(np.max(np.abs(th_lib)))
            worst = max(worst, float(np.max(np.abs(th_lib - th_plain))) / scale)
        bound = 16 * steps * EPS
        if not worst <= bound:
            raise AssertionError(f"plain {name} loop leaves the library's trajectory: "
                                 f"relative error {worst:.3g} > {bound:.3g}")
        out[name] = worst
    return out


def contestants(vg, f, theta0) -> dict[str, tuple]:
    """Name -> ``(reset, step)``: ``step()`` does one step (or the evaluations) and keeps
    its state; ``reset()`` puts it back at ``theta0`` with a fresh state (untimed), so
    every timed block runs the same steps."""
    out = {"evaluations": (lambda: None, lambda: (vg(theta0), f(theta0))),
           "value_and_grad": (lambda: None, lambda: vg(theta0))}
    for name in PLAIN:
        opt = LIBRARY[name]()
        box: dict = {}
        pbox: dict = {}

        def lib_reset(opt=opt, box=box):
            box["theta"], box["state"] = theta0, opt.init(theta0)

        def lib_step(opt=opt, box=box):
            box["theta"], box["state"], _ = opt.step(box["theta"], box["state"], vg, f)

        def plain_reset(name=name, pbox=pbox):
            pbox["theta"], pbox["st"] = theta0, plain_state(name, theta0)

        def plain_step(plain=PLAIN[name], pbox=pbox):
            pbox["theta"] = plain(vg, f, pbox["theta"], pbox["st"])

        out[f"plain {name}"] = (plain_reset, plain_step)
        out[f"paltest {name}"] = (lib_reset, lib_step)
    return out


def time_interleaved(calls: dict[str, tuple], rounds: int, block: int) -> dict[str, float]:
    """Median over ``rounds`` of the µs per step of a block of ``block`` steps from the
    start; the contestants take turns within every round."""
    times: dict[str, list] = {k: [] for k in calls}
    for reset, fn in calls.values():  # warm up
        reset()
        for _ in range(3):
            fn()
    for _ in range(rounds):
        for key, (reset, fn) in calls.items():
            reset()
            t0 = time.perf_counter()
            for _ in range(block):
                fn()
            times[key].append((time.perf_counter() - t0) / block * 1e6)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_problem(prob, rounds: int, block: int) -> dict:
    theta0 = prob.init_params(0)
    batch = next(iter(prob.batches(0, 0, 100)))
    vg, f = prob.bind(batch)
    errors = check_trajectories(vg, f, theta0)
    us = time_interleaved(contestants(vg, f, theta0), rounds, block)
    ratios = {"PAL / plain PAL": us["paltest pal"] / us["plain pal"],
              "PAL / SGD": us["paltest pal"] / us["paltest sgd"],
              "evaluations of PAL / of SGD": us["evaluations"] / us["value_and_grad"]}
    for name in PLAIN:
        if name != "pal":
            ratios[f"{LIBRARY[name].__name__} / plain"] = (
                us[f"paltest {name}"] / us[f"plain {name}"])
    return {"problem": prob.name, "n_params": int(prob.n_params), "batch": 100,
            "dtype": "float64", "us_per_step": us, "ratios": ratios,
            "plain_vs_library_rel_error": errors}


def figure8_wall(timeout: float) -> dict:
    exe = shutil.which("paltest", path=str(Path(sys.executable).parent)) or "paltest"
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        proc = subprocess.run([exe, "figure", "8", "--out", tmp], capture_output=True,
                              text=True, timeout=timeout)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"paltest figure 8 failed: {proc.stderr[-2000:]}")
    return {"command": "paltest figure 8 --out <tmp>", "wall_s": wall}


#: The stages of ``paltest figure 8`` timed by :func:`figure8_stages` (in this order).
STAGES = ("_select", "run_configs", "load_figure", "report", "draw")


def _stages_child(out_dir: str, jobs: int) -> None:
    """(In a child process.) ``paltest figure 8 --jobs <jobs>`` with each of
    :data:`STAGES` wrapped by a timer; prints one JSON line of seconds per stage (the
    selection's rounds and the final runs are the ``run_configs`` calls)."""
    t0 = time.perf_counter()
    from paltest import cli
    from paltest.testbed import experiments

    spent: dict[str, list] = {}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent.setdefault(name, []).append(time.perf_counter() - t)
        return wrapper

    for name in STAGES:
        setattr(experiments, name, timed(name, getattr(experiments, name)))
    with open(os.devnull, "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet
        try:
            cli.main(["figure", "8", "--jobs", str(jobs), "--no-progress", "--out", out_dir])
        finally:
            sys.stdout = stdout
    spent["total"] = [time.perf_counter() - t0]
    print(json.dumps(spent))


def figure8_stages(jobs: int, timeout: float) -> dict:
    """Seconds per stage of ``paltest figure 8 --jobs <jobs>`` in one child process:
    imports, the selection (its rounds of runs), the final runs, loading the results,
    the report (summary and claims) and drawing the plots."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--stages-child", tmp,
                               "--jobs", str(jobs)], capture_output=True, text=True,
                              timeout=timeout)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"figure 8 stages failed: {proc.stderr[-2000:]}")
    spent = json.loads(proc.stdout.strip().splitlines()[-1])
    rounds = spent.pop("run_configs")
    return {"jobs": jobs, "wall_s": wall, "startup_s": wall - spent["total"][0],
            "selection_s": spent["_select"][0],
            "selection_rounds_s": rounds[:-1], "final_runs_s": rounds[-1],
            "load_s": spent["load_figure"][0], "report_s": spent["report"][0],
            "draw_s": spent["draw"][0], "total_s": spent["total"][0]}


GOALS = [("mf-rank10", "PAL / plain PAL", 1.10), ("mf-rank10", "PAL / SGD", 1.6),
         ("mushrooms", "PAL / plain PAL", 1.10)]


def table(out: dict) -> str:
    lines = [f"Load average before: {out['loadavg_before']}; after: {out['loadavg_after']}; "
             f"OPENBLAS_NUM_THREADS={out['OPENBLAS_NUM_THREADS']}; medians of "
             f"{out['rounds']} rounds (mf) of blocks of {out['block']} steps", ""]
    for res in out["problems"]:
        lines += [f"### {res['problem']} ({res['n_params']} parameters, batch 100, float64)",
                  "", "| | µs per step (median) |", "|---|---:|"]
        lines += [f"| {k} | {v:.1f} |" for k, v in res["us_per_step"].items()]
        lines += ["", "| ratio | measured | goal | met? |", "|---|---:|---:|---|"]
        for key, val in res["ratios"].items():
            goal = next((g for p, k, g in GOALS if p == res["problem"] and k == key), None)
            if goal is None and key.endswith("/ plain") and key != "PAL / plain PAL":
                goal = 1.2
            verdict = "—" if goal is None else ("yes" if val <= goal else "no")
            lines.append(f"| {key} | {val:.2f} | {'—' if goal is None else f'≤ {goal}'} "
                         f"| {verdict} |")
        lines.append("")
    for msg in out["skipped"]:
        lines += [f"Skipped: {msg}", ""]
    fig = out.get("figure8")
    if fig:
        met = "yes" if fig["wall_s"] <= 6 else "no"
        lines += [f"`{fig['command']}`: {fig['wall_s']:.1f} s wall (goal ≤ 6 s on a quiet "
                  f"machine; met here: {met})", ""]
    st = out.get("figure8_stages")
    if st:
        rounds = ", ".join(f"{r:.2f}" for r in st["selection_rounds_s"])
        parts = sum(st[k] for k in ("selection_s", "final_runs_s", "load_s", "report_s",
                                    "draw_s"))
        lines += [f"`paltest figure 8 --jobs {st['jobs']}` by stage (seconds, one process, "
                  f"{st['wall_s']:.2f} wall): start-up and imports {st['startup_s']:.2f}; "
                  f"selection {st['selection_s']:.2f} (rounds "
                  f"{rounds}); final runs {st['final_runs_s']:.2f}; loading the results "
                  f"{st['load_s']:.2f}; report {st['report_s']:.2f}; plots "
                  f"{st['draw_s']:.2f}; the rest {st['total_s'] - parts:.2f}", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds, no Figure 8 run")
    p.add_argument("--jobs", type=int, default=2,
                   help="workers of the Figure 8 run timed by stage (default 2)")
    p.add_argument("--stages-child", metavar="DIR", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.stages_child:
        _stages_child(args.stages_child, args.jobs)
        return
    rounds, block = (21, 5) if args.quick else (201, 10)
    out = {"loadavg_before": loadavg(), "quick": args.quick, "rounds": rounds,
           "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
           "block": block, "paltest": paltest.__version__ if hasattr(paltest, "__version__")
           else None, "numpy": np.__version__, "problems": [], "skipped": []}
    out["problems"].append(bench_problem(problems.get("mf-rank10", dtype="float64"),
                                         rounds, block))
    try:
        prob = problems.get("mushrooms", dtype="float64") if os.environ.get(
            "PALTEST_DATA") else None
    except (OSError, ValueError) as err:
        prob, why = None, str(err)
    else:
        why = "PALTEST_DATA is not set"
    if prob is not None:
        out["problems"].append(bench_problem(prob, max(21, rounds // 4), 2))
    else:
        msg = f"mushrooms kernel problem skipped: {why}"
        print(msg, file=sys.stderr)
        out["skipped"].append(msg)
    if not args.quick:
        out["figure8"] = figure8_wall(timeout=600)
        out["figure8_stages"] = figure8_stages(args.jobs, timeout=600)
    out["loadavg_after"] = loadavg()
    text = table(out)
    stem = "floor-quick" if args.quick else "floor"
    res_dir = HERE / "results"
    res_dir.mkdir(exist_ok=True)
    (res_dir / f"{stem}.json").write_text(json.dumps(out, indent=1) + "\n")
    (res_dir / f"{stem}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
