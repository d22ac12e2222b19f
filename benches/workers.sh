#!/usr/bin/env bash
# Pages/s of one watch's run over the four fixture platforms, each paced at RPS requests/s,
# with 1, 2 and 4 `markwatch worker`s (one job slot each) beside `serve --workers 0`, all on
# one PostgreSQL database. A run is one job per platform and a platform runs one job at a time,
# so pages/s should grow with the workers up to four (the platforms), then stop.
#
#   benches/workers.sh [postgres://user@host:port]     # RPS=5 SCALE=4 WORKERS="1 2 4"
#
# Needs the release binary (CARGO_TARGET_DIR/release/markwatch, or BIN=...) and psql.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER=${1:-postgres://postgres@127.0.0.1:5432}
RPS=${RPS:-5}
SCALE=${SCALE:-4}
WORKERS=${WORKERS:-"1 2 4"}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/markwatch}
[ -x "$BIN" ] || { echo "no $BIN: cargo build --release first" >&2; exit 1; }

work=$(mktemp -d)
pids=()
stop_all() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}
trap 'stop_all; kill "$fixtures" 2>/dev/null || true; rm -rf "$work"' EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" fixtures serve --classic --cache-pages --scale "$SCALE" --addr "127.0.0.1:$port" \
    >"$work/fixtures.log" 2>&1 &
fixtures=$!
sleep 1

{
    echo '[crawl]'
    echo "definitions = \"$PWD/crawlers\""
    echo 'images_per_run = 0'
    echo '[crawl.browser]'
    echo 'screenshots = false'
    echo '[daemon]'
    echo 'workers = 0'
    echo 'job_lease_secs = 30'
    echo '[web]'
    echo 'addr = "127.0.0.1:0"'
    echo '[email]'
    echo "dir = \"$work/outbox\""
    echo '[schedule]'
    echo 'jitter_secs = 0'
    echo '[[schedule.watch]]'
    echo 'name = "bench"'
    echo 'cron = "0 0 1 1 *"'
    echo 'keywords = ["nike", "lego", "apple", "sony"]'
    for p in taobao tmall jd amazon_cn; do
        echo "[platforms.$p]"
        echo "base_url = \"http://127.0.0.1:$port/$p\""
        echo 'schedule = "off"'
        echo "requests_per_second = $RPS"
        echo 'login_required = false'
        echo 'fetch = "http"'
    done
} >"$work/markwatch.toml"

printf '%-8s %8s %8s %8s\n' workers pages secs pages/s
for n in $WORKERS; do
    db="$SERVER/mw_bench_workers"
    psql "$SERVER/postgres" -qc 'DROP DATABASE IF EXISTS mw_bench_workers' >/dev/null 2>&1
    psql "$SERVER/postgres" -qc 'CREATE DATABASE mw_bench_workers' >/dev/null
    mw() { (cd "$work" && "$BIN" --config "$work/markwatch.toml" --db "$db" "$@"); }
    mw brands import "$PWD/fixtures/brands.toml" >/dev/null 2>&1
    (cd "$work" && exec "$BIN" --config "$work/markwatch.toml" --db "$db" serve) \
        >"$work/serve.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        grep -q "markwatch serving" "$work/serve.log" && break
        sleep 0.1
    done
    for i in $(seq "$n"); do
        (cd "$work" && exec "$BIN" --config "$work/markwatch.toml" --db "$db" worker --slots 1) \
            >"$work/worker-$i.log" 2>&1 &
        pids+=($!)
    done
    sleep 1
    start=$(date +%s.%N)
    mw crawl --now --watch bench --wait >/dev/null
    end=$(date +%s.%N)
    pages=$(psql "$db" -qAtc 'SELECT count(*) FROM evidence')
    python3 -c "import sys; n, p, a, b = sys.argv[1:]; s = float(b) - float(a); print(f'{n:<8} {p:>8} {s:8.1f} {int(p) / s:8.1f}')" \
        "$n" "$pages" "$start" "$end"
    stop_all
done
psql "$SERVER/postgres" -qc 'DROP DATABASE IF EXISTS mw_bench_workers' >/dev/null
