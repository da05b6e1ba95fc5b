#!/usr/bin/env bash
# Python 3.12 manylinux wheels of the packages the GPU machine lacks, into .whl/ (run where PyPI is reachable).
# On the GPU machine: python3 -m pip install --no-deps --no-index --target .pydeps .whl/*.whl
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
for spec in "zlib-ng==1.1.0" "xgboost-cpu==3.2.0"; do
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "$spec"
done
ls -l .whl
