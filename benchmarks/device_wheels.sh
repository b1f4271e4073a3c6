#!/usr/bin/env bash
# The wheels a lent GPU machine lacks for a real `evoart evolve` there, downloaded here
# into .whl/ (ignored by git) for the device tool's `carry`. That machine's image has
# Python 3.12, torch, numpy, pillow, click, rich, jinja2 and filelock, but not deap, nor
# what deap 1.4.4 needs (moocore, cffi, pycparser), nor platformdirs (the device tool's
# KINDS.md lists its packages). benchmarks/gpu_check.py needs none of these.
#
#   bash benchmarks/device_wheels.sh          # about 1.3 MB
#
# benchmarks/gpu_session.sh installs them on the device (docs/PERFORMANCE.md, "A real run
# on the card"), as:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
#       --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl deap==1.4.4 moocore==0.3.2 cffi==2.1.1 pycparser==3.12 platformdirs==4.14.9
ls -l .whl
