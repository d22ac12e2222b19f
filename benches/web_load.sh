#!/usr/bin/env bash
# Load test of the review UI over 100,000 notices: queue pages (the first, a filtered and
# sorted deep one, the middle and the last), notice detail pages and the JSON API's list, at
# about 200 requests/s from wrk on loopback (10 connections, each pausing 50 ms between
# requests). Ends with a table of p50/p90/p99 latency and achieved requests/s per page.
#
#   benches/web_load.sh [DB] [NOTICES]
#
# DB is an SQLite file or a postgres:// URL (an existing, empty database to seed).
#
# Needs wrk (apt-get install wrk) and a release build. The database is created and seeded
# once (synthetic data: `markwatch bench seed-notices`); reruns reuse it.
#
# HISTORY_WEEKS=52 seeds a year of case history instead (its own database by default) and
# drives the dashboard with its trend charts: all brands over 13 and 52 weeks, one brand over
# 52, and one chart's CSV.
set -euo pipefail
# DURATION (default 30s) sets how long each wrk run lasts; CONNECTIONS (default 10) how many
# wrk keeps open. Each connection waits 50 ms after every response, so 10 of them offer a
# little under 200 requests/s (about 187 measured); more connections offer more.
cd "$(dirname "$0")/.."
HISTORY_WEEKS="${HISTORY_WEEKS:-}"
DB="${1:-${CARGO_TARGET_DIR:-target}/bench-web/markwatch${HISTORY_WEEKS:+-history-$HISTORY_WEEKS}.db}"
N="${2:-100000}"
ADDR=127.0.0.1:18088
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet --bin markwatch --example review_ui
BIN="$CARGO_TARGET_DIR/release/markwatch"
case "$DB" in
    postgres://*|postgresql://*)
        seeded=$(psql "$DB" -qAtc 'SELECT count(*) FROM notices' 2>/dev/null || echo 0) ;;
    *)
        mkdir -p "$(dirname "$DB")"
        seeded=$([ -s "$DB" ] && echo "$N" || echo 0) ;;
esac
if [ "$seeded" -lt "$N" ]; then
    "$BIN" --db "$DB" brands import fixtures/brands.toml
    "$BIN" --db "$DB" bench seed-notices "$N" ${HISTORY_WEEKS:+--history-weeks "$HISTORY_WEEKS"}
fi
# Not `grep -q`: it stops reading at the first match, and the listing then fails on a closed pipe.
"$BIN" --db "$DB" users list | grep bench >/dev/null || \
    echo "quiver lantern basil orbit" | "$BIN" --db "$DB" users add bench --role reviewer --password-stdin
"$CARGO_TARGET_DIR/release/examples/review_ui" "$DB" "$ADDR" &
SERVER=$!
trap 'kill $SERVER' EXIT
for _ in $(seq 50); do curl -fs "http://$ADDR/login" >/dev/null && break; sleep 0.1; done

# Log in like a browser: the login form's CSRF cookie and field, then the session cookie.
JAR=$(mktemp)
CSRF=$(curl -fs -c "$JAR" "http://$ADDR/login" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' | head -1)
curl -fs -b "$JAR" -c "$JAR" -o /dev/null -d "csrf=$CSRF&name=bench&password=quiver+lantern+basil+orbit&next=/" "http://$ADDR/login"
SESSION=$(awk '$6 == "mw_session" { print $7 }' "$JAR")
rm -f "$JAR"
[ -n "$SESSION" ] || { echo "login failed" >&2; exit 1; }

TOKEN=$("$BIN" --db "$DB" users token bench --label web_load.sh)
LAST=$(( (N + 49) / 50 ))

LUA=$(mktemp --suffix=.lua)
OUT=$(mktemp -d)
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
-- Each connection: one request per 50 ms plus the response time.
function delay() return 50 end
LUAEOF
PAGES=("/queue" "/queue?platform=jd&sort=score&page=40" "/queue?page=$((LAST / 2))" "/queue?page=$LAST" "detail"
       "/api/v1/notices?platform=jd&sort=score&page=40")
if [ -n "$HISTORY_WEEKS" ]; then
    PAGES=("/" "/?weeks=52" "/?weeks=52&brand=Nike" "/trends/cases.csv?weeks=52")
fi
for i in "${!PAGES[@]}"; do
    P="${PAGES[$i]}"
    echo "== $P"
    # One request first, reported: what the first person after a start waits (SQLite's page
    # cache still cold); wrk then measures the steady state.
    if [ "$P" != detail ]; then
        curl -s -o /dev/null -w "first request: %{time_total} s\n" -H "Cookie: mw_session=$SESSION" "http://$ADDR$P"
    fi
    BENCH_PATH="$P" wrk -t2 -c"${CONNECTIONS:-10}" -d"${DURATION:-30s}" --latency -s "$LUA" \
        -H "Cookie: mw_session=$SESSION" -H "Authorization: Bearer $TOKEN" "http://$ADDR" | tee "$OUT/$i"
done
rm -f "$LUA"

# wrk prints latencies as 812.00us, 7.20ms or 1.02s: all in ms here.
echo
echo "| page | p50 ms | p90 ms | p99 ms | req/s | non-2xx | timeouts |"
echo "|---|---|---|---|---|---|---|"
for i in "${!PAGES[@]}"; do
    awk -v page="${PAGES[$i]}" '
        function ms(v) {
            if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000
            return v
        }
        $1 == "50%" { p50 = ms($2) } $1 == "90%" { p90 = ms($2) } $1 == "99%" { p99 = ms($2) }
        $1 == "Requests/sec:" { rps = $2 } /Non-2xx/ { bad = $NF } /Socket errors/ { late = $NF }
        END {
            # wrk gives up on a request after 2 s; if none came back there is no latency.
            if (p99 == 0) { printf "| %s | - | - | - | %.0f | %d | %d |\n", page, rps, bad, late; exit }
            printf "| %s | %.1f | %.1f | %.1f | %.0f | %d | %d |\n", page, p50, p90, p99, rps, bad, late
        }
    ' "$OUT/$i"
done
rm -rf "$OUT"
