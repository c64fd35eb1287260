#!/usr/bin/env bash
# A second environment, .venv-peers, for benchmarks/pareto.py: the same as .venv but with
# opencv-contrib-python-headless (cv2.dnn_superres runs OpenCV's ESPCN and FSRCNN) in place of
# opencv-python-headless. The two wheels both install the cv2 package, so they never share an
# environment. <5: with OpenCV 5.1.0, dnn_superres's readModel sent the peers' TensorFlow .pb graphs
# to its ONNX importer, which rejected them. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv-peers/bin/python ] || "$PY" -m venv .venv-peers
.venv-peers/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv-peers/bin/python -m pip install -q "torch==2.13.0"
.venv-peers/bin/python -m pip install -q --no-deps -e .
# the core dependencies of pyproject.toml, with OpenCV's contrib build
.venv-peers/bin/python -m pip install -q "av>=17.1" "ffmpeg-python>=0.2" "numpy>=1.24" "tqdm>=4.60" "click>=8.1" \
    "opencv-contrib-python-headless>=4.8,<5"
# the runtime `vsr upscale --runtime auto` picks for most checkpoints, so that pareto.py times ours as users run them
.venv-peers/bin/python -m pip install -q "onnx>=1.16" "openvino>=2024.4"
if .venv-peers/bin/python -m pip show opencv-python-headless >/dev/null 2>&1; then
    echo "setup_peers: opencv-python-headless is in .venv-peers too; remove it (pip uninstall)" >&2
    exit 1
fi
.venv-peers/bin/python -c "import cv2; cv2.dnn_superres.DnnSuperResImpl_create()" >/dev/null
echo "setup_peers: ok (.venv-peers, OpenCV $(.venv-peers/bin/python -c 'import cv2; print(cv2.__version__)') with dnn_superres)" >&2
