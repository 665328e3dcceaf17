#!/usr/bin/env bash
# Runs every check and test of the workspace, installing what the tests need first.
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
cargo --version
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi

step "test tools"
# The SQLite backend's tests read a database with the sqlite3 shell; the Redis backend's tests
# start their own redis-server processes and build clusters with redis-cli.
missing=()
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}"
fi
sqlite3 --version
redis-server --version

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace"
cargo test --workspace

step "examples"
cargo run -q -p nadb-examples --example quickstart
cargo run -q -p nadb-examples --example custom_backend
cargo run -q -p nadb-examples --example tags_and_ttl
cargo run -q -p nadb-examples --example ingest
cargo run -q -p nadb-examples --example transaction
cargo run -q -p nadb-examples --example migrate

step "benchmark report at small sizes (the binary behind docs/bench)"
bench_out="$(mktemp -d)"
cargo run -q -p nadb-bench --bin nadb-bench-report -- --keys 300 --out "$bench_out" > /dev/null
test -s "$bench_out/report.json" && test -s "$bench_out/report.md" && test -s "$bench_out/chart.svg"
rm -rf "$bench_out"

step "all checks passed"
