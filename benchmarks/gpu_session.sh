#!/usr/bin/env bash
# Everything a lent GPU session measures, in one call of the device tool, so its scarce
# minutes go to the card and not to a second machine start (a machine left idle for
# half a minute is given back). Writes under $OUT as it goes, so a cut-off call still
# returns what it had:
#   1. nvidia-smi and the software versions (device.txt);
#   2. benchmarks/gpu_check.py (gpu-check.json, gpu-check-population.json, gpu-check.log),
#      at most GPU_CHECK_S seconds (default 330);
#   3. if the wheels are carried (.whl/, from benchmarks/device_wheels.sh), the default run
#      on the card and its held-out evaluation (default-run-shapes.json and .png,
#      default-run.log), in what is left of TOTAL_S seconds (default 560; skipped if under
#      60 s are left). On this 2-core CPU the run and its evaluation took 190 s.
#
# Here:          bash benchmarks/device_wheels.sh
# Device tool:   command "bash benchmarks/gpu_session.sh", carry [".whl"], timeout_s 590
# Rehearsal on a CPU: OUT=/tmp/session bash benchmarks/gpu_session.sh (gpu_check at its smoke size)
set -u
cd "$(dirname "$0")/.."
start=$SECONDS
OUT=${OUT:-/tmp/evoart-gpu-session}
mkdir -p "$OUT"
{
    date -u
    nvidia-smi 2>&1 || echo "no nvidia-smi"
    python3 -c "import sys, torch, numpy; print(sys.version); print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__)"
} > "$OUT/device.txt" 2>&1
cat "$OUT/device.txt"

t0=$SECONDS
PYTHONPATH=$PWD timeout --kill-after=10 "${GPU_CHECK_S:-330}" \
    python3 benchmarks/gpu_check.py --out "$OUT/gpu-check.json" > "$OUT/gpu-check.log" 2>&1
echo "gpu_check: exit $? after $((SECONDS - t0)) s"
tail -n 25 "$OUT/gpu-check.log"

left=$(( ${TOTAL_S:-560} - (SECONDS - start) ))
if (( left < 60 )); then
    echo "only ${left} s left: the default run is skipped"
elif compgen -G ".whl/*.whl" > /dev/null; then
    t0=$SECONDS
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        > "$OUT/wheels.log" 2>&1 || { echo "the wheels did not install:"; tail -n 5 "$OUT/wheels.log"; exit 1; }
    PYTHONPATH=/tmp/site:$PWD timeout --kill-after=10 "$left" \
        python3 benchmarks/default_run.py --out /tmp/evoart-default --docs "$OUT" > "$OUT/default-run.log" 2>&1
    echo "default run: exit $? after $((SECONDS - t0)) s"
    tail -n 12 "$OUT/default-run.log"
else
    echo "no .whl/ carried: the default run is skipped (bash benchmarks/device_wheels.sh makes it)"
fi
