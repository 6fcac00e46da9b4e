#!/usr/bin/env bash
# Installs what building and testing finetune needs on a fresh Debian machine.
# Debian packages: compiler toolchain, OpenBLAS (OpenMP build), PCRE2, utf8proc, cJSON, cmocka.
# With --python it also installs the PyPI packages used by parity-fixture scripts and bench/ (torch, transformers).
set -euo pipefail
need=()
for p in build-essential pkg-config libopenblas-openmp-dev libpcre2-dev libutf8proc-dev libcjson-dev libcmocka-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing Debian packages: ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >&2
fi
if [ "${1:-}" = "--python" ]; then
  python3 -c "import torch, transformers, safetensors" 2>/dev/null || \
    python3 -m pip install -q torch transformers safetensors tokenizers numpy >&2
fi
