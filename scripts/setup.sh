#!/usr/bin/env bash
# Set up a development environment in ./.venv: the CPU build of torch (pinned),
# vsr in editable mode with its test, Ray and runtime (ONNX Runtime, OpenVINO) extras, and Debian's ffmpeg binary for the
# ffmpeg backend (installed when missing and we are root). Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ffmpeg >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing ffmpeg (apt-get)" >&2
        apt-get install -y -qq ffmpeg >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq ffmpeg >/dev/null; }
    else
        echo "setup: no ffmpeg binary and not root: the ffmpeg backend and its tests will be skipped" >&2
    fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# setuptools >= 77 reads the SPDX licence field (the wheel test builds without isolation)
.venv/bin/python -m pip install -q --upgrade "setuptools>=77" 2>&1 | grep -v -i "warning" || true
# torch is pinned to the CPU wheel here; GPU users: see README ("GPU").
.venv/bin/python -m pip install -q "torch==2.13.0" 2>&1 | grep -v -i "warning" || true
.venv/bin/python -m pip install -q -e ".[test,ray,onnx,openvino]" 2>&1 | grep -v -i "warning" || true
.venv/bin/python -c "import torch, av, cv2, click, tqdm, ffmpeg, vsr" >/dev/null
echo "setup: ok ($(.venv/bin/python -c 'import torch, av; print("torch", torch.__version__, "| av", av.__version__)'))" >&2
