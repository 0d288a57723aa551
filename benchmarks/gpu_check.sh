#!/usr/bin/env bash
# One short GPU check, for a session that has a CUDA machine (run it once, from the
# repository root):
#
#     OUT=/some/folder PALTEST_DATA=/path/to/libsvm bash benchmarks/gpu_check.sh
#
# 1. installs the package with the gpu and test extras (offline: set WHEELHOUSE to a
#    folder of wheels; a CuPy that is already importable is kept);
# 2. runs the GPU tests and the backend-aware tests with `pytest --xp cupy`;
# 3. runs the benchmark with `--xp cupy --quick` (overhead, peers, and the CuPy/NumPy
#    speed-up of one epoch of the ijcnn protocol), JSON into $OUT.
#
# Everything it writes goes to $OUT: nvidia-smi.txt, install.log, pytest.log,
# pytest.xml, bench.log, bench/cupy-quick.json, summary.txt. Each part has a time
# limit, so the whole script stays within about 10 minutes.
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
# A GPU machine without a package index keeps its own CuPy, NumPy, SciPy, scikit-learn,
# joblib, tqdm, pandas, pytest and hypothesis; what it lacks (typically array-api-compat,
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
timeout 300 "$PY" -m pytest -q -p no:warnings --xp cupy -rs --junitxml "$OUT/pytest.xml" \
  tests/test_gpu.py tests/test_pal.py tests/test_pal_case.py tests/test_runner.py \
  tests/test_kernel_logreg.py tests/test_backend.py > "$OUT/pytest.log" 2>&1
note "pytest --xp cupy: exit $? ($(tail -n 1 "$OUT/pytest.log"))"

# -- 3. benchmark --------------------------------------------------------------------
timeout 360 "$PY" benchmarks/run.py --quick --xp cupy --only overhead peers speedup \
  --out "$OUT/bench" --no-readme > "$OUT/bench.log" 2>&1
note "benchmark --xp cupy: exit $? (log: bench.log, JSON: bench/cupy-quick.json)"
grep -E "speedup|ratio" "$OUT/bench.log" | tail -n 20 >> "$summary"
cat "$summary"
