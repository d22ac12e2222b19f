#!/bin/sh
# markwatch's browser fetcher against Playwright for Python, on the same fixture pages, in the
# same Debian Chromium, alternated (docs/benchmarks.md, "Browser crawl").
#
#   benches/browser/compare.sh [MARKWATCH_BIN] [ROUNDS] [TABS...]
#
# Needs: chromium (apt), python3 with `pip install playwright` (its browser download unused).
set -eu
BIN=${1:-target/dist/markwatch}
ROUNDS=${2:-3}
shift 2 2>/dev/null || shift $#
TABS=${*:-1 2 4}
HERE=$(dirname "$0")
PORT=${PORT:-8471}
BASE=http://127.0.0.1:$PORT
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT

# Modern mode, with the slider and session limits out of the way: this measures page loads.
"$BIN" fixtures serve --addr 127.0.0.1:$PORT --scale 10 --cache-pages \
    --mtop-max-calls 1000000 --session-ttl-secs 86400 >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 50); do curl -sf -o /dev/null "$BASE/taobao/member/login.jhtml" && break; sleep 0.2; done

# Logged in as a person would be, through the fixture's login form.
curl -sf -o /dev/null -c "$WORK/cookies.txt" \
    -d 'fm-login-id=tb_watcher_1&fm-login-password=fixture-tb-1&redirectURL=/' \
    "$BASE/taobao/member/login.jhtml"
python3 - "$WORK" "$BASE" <<'PY'
import json, sys
work, base = sys.argv[1], sys.argv[2]
rows = [l.rstrip("\n").split("\t") for l in open(f"{work}/cookies.txt")
        if l.strip() and (not l.startswith("#") or l.startswith("#HttpOnly_"))]
json.dump([{"name": r[5], "value": r[6], "url": base + "/"} for r in rows],
          open(f"{work}/cookies.json", "w"))
urls = [f"{base}/taobao/search?q={kw}&s={s}"
        for kw in ["nike", "lv", "lego", "sony", "omega", "coach", "gucci", "apple"]
        for s in range(0, 44 * 15, 44)]
open(f"{work}/urls.txt", "w").write("\n".join(urls) + "\n")
print(f"{len(urls)} pages", file=sys.stderr)
PY

# Render every page once before timing, so neither side pays for the server's first renders.
xargs -n 1 curl -sf -o /dev/null -b "$WORK/cookies.txt" <"$WORK/urls.txt"

CAPTURE='mtop\.relationrecommend'
for round in $(seq "$ROUNDS"); do
  for tabs in $TABS; do
    printf 'round %s tabs %s markwatch   ' "$round" "$tabs"
    python3 "$HERE/treestat.py" --json -- "$BIN" bench browser --urls "$WORK/urls.txt" \
        --cookies "$WORK/cookies.txt" --tabs "$tabs" --capture "$CAPTURE" 2>&1 | tr '\n' ' '
    echo
    printf 'round %s tabs %s playwright  ' "$round" "$tabs"
    python3 "$HERE/treestat.py" --json -- python3 "$HERE/playwright_pages.py" \
        --urls "$WORK/urls.txt" --cookies "$WORK/cookies.json" --tabs "$tabs" \
        --capture "$CAPTURE" 2>&1 | tr '\n' ' '
    echo
  done
done
