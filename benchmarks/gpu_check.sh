#!/usr/bin/env bash
# One short GPU check, for a session that has a CUDA machine (run it once, from the
# repository root):
#
#     OUT=/some/folder PALTEST_DATA=/path/to/libsvm bash benchmarks/gpu_check.sh
#
# 1. installs the package with the gpu and test extras (offline: set WHEELHOUSE to a
#    folder of wheels; a CuPy that is already importable is kept);
# 2. runs the whole test suite with `pytest --xp cupy` (every namespace-aware test on
#    CuPy, the GPU tests with `cupyx.allow_synchronize(False)`), and, when a JAX that
#    sees a CUDA GPU is installed, again with `pytest --xp jax` (the compiled-step tests
#    among them; the test session turns on JAX's 64-bit mode), and, when a PyTorch that
#    sees the GPU is installed, tests/test_torch.py (paltest.torch.PAL on CUDA: no step
#    synchronizes, under torch's sync debug mode);
# 3. runs the benchmark with `--xp cupy --quick` (the overhead curve and the CuPy/NumPy
#    speed-up of one epoch of the ijcnn and mushrooms protocols), JSON into $OUT.
#
# Everything it writes goes to $OUT: nvidia-smi.txt, install.log, pytest.log,
# pytest.xml, pytest-jax.log (when JAX sees a GPU), pytest-torch.log (when PyTorch
# does), bench.log, bench/cupy-quick.json,
# summary.txt. Each part has a time limit, so the whole script stays within about 10
# minutes (14 with the JAX leg).
set -u
OUT="${OUT:?set OUT to the folder for the results}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT/bench"
cd "$(dirname "$0")/.."
summary="$OUT/summary.txt"
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }

(nvidia-smi || echo "nvidia-smi not found") > "$OUT/nvidia-smi.txt" 2>&1

# -- 1. install ----------------------------------------------------------------------
# A GPU machine without a package index keeps its own CuPy, NumPy, SciPy, scikit-learn
# (with threadpoolctl), joblib, tqdm, pandas, pytest and hypothesis; what it lacks (typically array-api-compat,
# pooch and pooch's platformdirs) goes in WHEELHOUSE, installed without dependencies.
{
  if "$PY" -c "import cupy" 2>/dev/null; then
    if [ -n "${WHEELHOUSE:-}" ]; then
      timeout 300 "$PY" -m pip install --no-index --no-deps "$WHEELHOUSE"/*.whl
    fi
    timeout 300 "$PY" -m pip install --no-index --no-deps --no-build-isolation -e . \
      || timeout 300 "$PY" -m pip install -e ".[test]"
  elif [ -n "${WHEELHOUSE:-}" ]; then
    timeout 300 "$PY" -m pip install --no-index --find-links "$WHEELHOUSE" -e ".[gpu,test]"
  else
    timeout 300 "$PY" -m pip install -e ".[gpu,test]"
  fi
  "$PY" -c "import paltest, problems, array_api_compat, pooch; print('imports ok')"
} > "$OUT/install.log" 2>&1
note "install: exit $? (log: install.log)"
if ! "$PY" -c "import cupy; assert cupy.cuda.runtime.getDeviceCount() > 0" \
    >> "$OUT/install.log" 2>&1; then
  note "CuPy is not importable or sees no GPU: the checks below will skip (see install.log)"
fi
"$PY" -c "import cupy; print('cupy', cupy.__version__)" >> "$summary" 2>&1

# -- 2. tests ------------------------------------------------------------------------
timeout 330 "$PY" -m pytest -q -p no:warnings --xp cupy -rs --junitxml "$OUT/pytest.xml" \
  tests > "$OUT/pytest.log" 2>&1
note "pytest --xp cupy: exit $? ($(tail -n 1 "$OUT/pytest.log"))"
if "$PY" -c "import jax, sys; sys.exit(not any(d.platform == 'gpu' for d in jax.devices()))" \
    >> "$OUT/install.log" 2>&1; then
  timeout 240 "$PY" -m pytest -q -p no:warnings --xp jax -rs tests > "$OUT/pytest-jax.log" 2>&1
  note "pytest --xp jax (CUDA): exit $? ($(tail -n 1 "$OUT/pytest-jax.log"))"
else
  note "no JAX with a CUDA GPU: pytest --xp jax not run (pip install 'jax[cuda12]' to add it)"
fi

if "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" \
    >> "$OUT/install.log" 2>&1; then
  timeout 240 "$PY" -m pytest -q -p no:warnings -rs tests/test_torch.py \
    > "$OUT/pytest-torch.log" 2>&1
  note "pytest tests/test_torch.py (CUDA tests included): exit $? ($(tail -n 1 "$OUT/pytest-torch.log"))"
else
  note "no PyTorch with a CUDA GPU: paltest.torch's CUDA tests not run"
fi

# -- 3. benchmark --------------------------------------------------------------------
timeout 240 "$PY" benchmarks/run.py --quick --xp cupy --only overhead speedup \
  --out "$OUT/bench" --no-readme > "$OUT/bench.log" 2>&1
note "benchmark --xp cupy: exit $? (log: bench.log, JSON: bench/cupy-quick.json)"
grep -E "speedup|ratio" "$OUT/bench.log" | tail -n 20 >> "$summary"
cat "$summary"
