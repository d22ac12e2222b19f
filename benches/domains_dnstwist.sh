#!/usr/bin/env bash
# Recall of the domain watch's candidates on fixtures/domains/labelled.tsv, beside dnstwist's
# permutations of each demo brand's Latin marks under .cn, given the same zones (--tld) and the
# same shop words (--dictionary), so it has its best chance. dnstwist only generates here: its
# `list` format makes no DNS query. Figures: docs/benchmarks.md, "Domain watch".
#   benches/domains_dnstwist.sh            # from the repository root
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${DNSTWIST_VENV:-${TMPDIR:-/tmp}/markwatch-dnstwist}"
[ -x "$venv/bin/dnstwist" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q dnstwist==20250130; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%s\n' cn com.cn net.cn org.cn > "$work/tlds"
printf '%s\n' shop outlet china cn store sale > "$work/words"
# Each brand's Latin marks as labels: lower case, accents folded, spaces dropped (SK-II → sk-ii).
python3 - fixtures/brands.toml > "$work/labels" <<'PY'
import sys, tomllib, unicodedata
for b in tomllib.load(open(sys.argv[1], "rb"))["brand"]:
    for m in b["mark"]:
        t = unicodedata.normalize("NFKD", m["text"]).encode("ascii", "ignore").decode().lower()
        t = "".join(c for c in t if c.isalnum() or c == "-").strip("-")
        if t and not any("\u4e00" <= c <= "\u9fff" for c in m["text"]):
            print(t)
PY
sort -u "$work/labels" | while read -r label; do
    "$venv/bin/dnstwist" --format list --tld "$work/tlds" --dictionary "$work/words" "$label.cn"
done > "$work/dnstwist.txt"
echo "dnstwist $("$venv/bin/pip" show dnstwist | awk '/^Version/ {print $2}'): $(wc -l < "$work/dnstwist.txt") names for $(sort -u "$work/labels" | wc -l) Latin marks"
cargo run --release --quiet -- bench domains --compare "$work/dnstwist.txt" "$@"
