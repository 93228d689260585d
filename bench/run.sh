#!/usr/bin/env bash
# Runs the compiled bench on Node 24 (the current LTS) unless BENCH_NODE names another line
# (BENCH_NODE=22) or a node binary (BENCH_NODE=/usr/bin/node). Arguments name scenarios.
set -euo pipefail
cd "$(dirname "$0")/.."
node_bin=$(bash scripts/node-line.sh "${BENCH_NODE:-24}")
exec "$node_bin" bench/dist/bench/run.js "$@"
