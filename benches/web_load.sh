#!/usr/bin/env bash
# Load test of the review UI: queue and notice detail pages over 100,000 notices, at about
# 200 requests/s from wrk on loopback (10 connections, each pausing 50 ms between requests).
#
#   benches/web_load.sh [DB] [NOTICES]
#
# Needs wrk (apt-get install wrk) and a release build. The database is created and seeded
# once (synthetic data: `markwatch bench seed-notices`); reruns reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."
DB="${1:-${CARGO_TARGET_DIR:-target}/bench-web/markwatch.db}"
N="${2:-100000}"
ADDR=127.0.0.1:18088
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet --bin markwatch --example review_ui
BIN="$CARGO_TARGET_DIR/release/markwatch"
mkdir -p "$(dirname "$DB")"
if [ ! -s "$DB" ]; then
    "$BIN" --db "$DB" brands import fixtures/brands.toml
    "$BIN" --db "$DB" bench seed-notices "$N"
fi
"$BIN" --db "$DB" users list | grep -q bench || \
    echo "bench-password-123" | "$BIN" --db "$DB" users add bench --role reviewer --password-stdin
"$CARGO_TARGET_DIR/release/examples/review_ui" "$DB" "$ADDR" &
SERVER=$!
trap 'kill $SERVER' EXIT
for _ in $(seq 50); do curl -fs "http://$ADDR/login" >/dev/null && break; sleep 0.1; done

# Log in like a browser: the login form's CSRF cookie and field, then the session cookie.
JAR=$(mktemp)
CSRF=$(curl -fs -c "$JAR" "http://$ADDR/login" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' | head -1)
curl -fs -b "$JAR" -c "$JAR" -o /dev/null -d "csrf=$CSRF&name=bench&password=bench-password-123&next=/" "http://$ADDR/login"
SESSION=$(awk '$6 == "mw_session" { print $7 }' "$JAR")
rm -f "$JAR"
[ -n "$SESSION" ] || { echo "login failed" >&2; exit 1; }

LUA=$(mktemp --suffix=.lua)
cat > "$LUA" <<LUAEOF
local n = $N
local path = os.getenv("BENCH_PATH")
math.randomseed(42)
request = function()
  if path == "detail" then
    return wrk.format("GET", "/notices/" .. math.random(1, n))
  end
  return wrk.format("GET", path)
end
-- 10 connections x one request per ~50 ms = about 200 requests/s.
function delay() return 50 end
LUAEOF
for P in "/queue" "/queue?platform=jd&sort=score&page=40" "detail"; do
    echo "== $P"
    BENCH_PATH="$P" wrk -t2 -c10 -d30s --latency -s "$LUA" -H "Cookie: mw_session=$SESSION" "http://$ADDR"
done
rm -f "$LUA"
