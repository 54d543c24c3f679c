#!/usr/bin/env bash
# Load test: the release binary on loopback, a fresh database, a real key,
# driven by wrk. Reports req/s and p50/p99 for GET /health and POST /v1/check
# on SQLite, then on Postgres, peak RSS, and checks that the audit table holds
# exactly one row per 200 and 422 answer.
#
# Usage: scripts/loadtest.sh [seconds per run, default 15] [connections, default 32]
# Environment: WARDEN_AUDIT_DURABILITY=durable measures the mode that
# acknowledges a decision only once its audit row is durable (the server
# reads the setting from the environment); LOAD_RUNS picks the runs
# (default "sqlite reload postgres redis"). The redis run measures /v1/check
# with rate limits kept in the process and then shared through Redis
# (WARDEN_LOAD_REDIS, default redis://127.0.0.1:6379; keys under a prefix
# of the run's own, deleted afterwards), alternating, LOAD_PAIRS pairs
# (default 3) on SQLite. The
# redis-memory run (not in the default list) measures a private
# redis-server holding 1,000,000 keys' cells made by the rate-limit script,
# then again once they have expired: LOAD_RUNS=redis-memory. The webhooks
# run (not in the default list) measures /v1/check with a webhook endpoint
# registered against the same run without: LOAD_RUNS=webhooks. The
# shadow-set run (not in the default list) measures /v1/check with a
# shadow policy set as large as the enforced one (the default policies,
# external models scoring 30: every blocked request of the mix gets
# another score, so its row records the shadow set's decision) against the
# same server without, twice each, alternating: LOAD_RUNS=shadow-set. The
# chain run (not in the default list) measures the audit hash chain's cost:
# it builds, from this checkout's HEAD in a scratch worktree, a binary whose
# audit writer neither encodes nor hashes usage rows (empty hashes; the
# only change, made by scripts/chain_off.py, which fails if the code it
# edits has moved), and the same checkout unchanged, both into a target
# directory of their own, then compares /v1/check with the two, LOAD_PAIRS
# alternating pairs (default 3) on SQLite, then on Postgres: LOAD_RUNS=chain.
# Needs: PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth) for the
# Postgres half; Redis and redis-cli for the redis run; wrk (installed with
# apt-get if missing); python3. LOAD_BUILD=0 skips the release build and
# measures the binary already there.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-15}"
CONNS="${2:-32}"
LOAD_RUNS="${LOAD_RUNS:-sqlite reload postgres redis}"
REDIS="${WARDEN_LOAD_REDIS:-redis://127.0.0.1:6379}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/warden/target}"
BIN="$CARGO_TARGET_DIR/release/warden"
PG="${WARDEN_LOAD_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
WORK="$(mktemp -d)"
# A failed chain run may leave its scratch worktree registered: prune it.
trap 'rm -rf "$WORK"; git worktree prune 2>/dev/null || true' EXIT

# Audit rows in a SQLite file / a Postgres database (run_backend's counter).
rows_sqlite() { python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from usage_log').fetchone()[0])" "$1"; }
rows_pg() { psql "$PG/$1" -tAc 'select count(*) from usage_log'; }

# pairs_report TITLE A-LABEL B-LABEL "A req/s…" "B req/s…" "A p99…" "B p99…":
# each pair and the median of the pairs' ratios A/B, with the pair that
# gives it.
pairs_report() {
  python3 - "$@" <<'PY'
import statistics, sys
title, la, lb = sys.argv[1:4]
a, b, pa, pb = ([float(x) for x in v.split()] for v in sys.argv[4:8])
ratios = [x / y for x, y in zip(a, b)]
for i, (x, y, px, py, q) in enumerate(zip(a, b, pa, pb, ratios), 1):
    print(f"{title} pair {i}: {x:.0f} req/s (p99 {px} ms) {la}, {y:.0f} req/s (p99 {py} ms) {lb}: {100 * q:.1f}%")
m = statistics.median_low(ratios)
i = ratios.index(m)
print(f"{title}: {la} at {100 * m:.1f}% of {lb} (median of {len(ratios)} pairs: pair {i + 1}, {a[i]:.0f} against {b[i]:.0f} req/s, "
      f"p99 {pa[i]} against {pb[i]} ms)")
PY
}

if ! command -v wrk >/dev/null; then
  echo "installing wrk" >&2
  (apt-get install -y wrk >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y wrk >/dev/null))
fi
# LOAD_BUILD=0 measures the release binary already built.
[ "${LOAD_BUILD:-1}" = 0 ] || cargo build --release -p warden-server >&2

cat > "$WORK/check.lua" <<'LUA'
-- Three kinds of request in turn: allowed, blocked, and refused (422).
local bodies = {
  '{"model":"gpt-4","operation":"classify","metadata":{"intent":"spam_detection","contains_personal_data":false,"is_external_model":false}}',
  '{"model":"gpt-4","operation":"classify","metadata":{"intent":"spam_detection","contains_personal_data":true,"is_external_model":true}}',
  '{"model":"gpt-4","operation":"classify","metadata":{"messages":[{"content":"x"}]}}',
}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("WARDEN_KEY")
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, "/v1/check", nil, bodies[i])
end
LUA

# wrk --latency output -> "req/s p50 p99"
summarise() {
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)
def pct(p):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)" % p, text, re.M)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f"{float(rps):.0f} {pct(50):.3f} {pct(99):.3f} {non2xx.group(1) if non2xx else 0}")
PY
}

metric() { # metric NAME-with-labels -> value (0 when absent)
  curl -s "http://127.0.0.1:$PORT/metrics" | python3 -c "
import sys
want = sys.argv[1]
print(next((l.split()[-1] for l in sys.stdin if l.startswith(want + ' ')), '0'))" "$1"
}

# run_backend NAME URL ROW-COUNTER [extra serve flags…]; leaves the /v1/check
# figures in CHECK_RPS and CHECK_P99.
run_backend() {
  local name="$1" url="$2" count_rows="$3"
  shift 3
  # Let the previous run's writes reach the disk first, so the kernel's
  # write-back doesn't stall this run's database commits.
  sync
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$BIN" migrate --database-url "$url" >/dev/null 2>&1
  WARDEN_KEY=$("$BIN" keys create --customer "load@example.com" --name load --database-url "$url" | tail -n 1)
  export WARDEN_KEY
  # The key's limit is raised for the test: the default quota is set far
  # above what the run can send.
  RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$PORT" --database-url "$url" \
    --rate-limit-requests 1000000000 --rate-limit-window 60s "$@" >"$WORK/$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
  # One request first: the key's single bcrypt verification (~0.25 s at the
  # default cost) happens once per key per process, not in the measurement.
  curl -s -o /dev/null -X POST "http://127.0.0.1:$PORT/api/evaluate" -H "Authorization: Bearer $WARDEN_KEY"
  # A run may prepare the live server first (the webhooks run registers an endpoint).
  if [ -n "${BEFORE_LOAD:-}" ]; then eval "$BEFORE_LOAD"; fi
  wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$PORT/health" >"$WORK/$name-health.txt"
  wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/check.lua" "http://127.0.0.1:$PORT" >"$WORK/$name-check.txt"
  local depth=$(metric 'warden_audit_queue_depth')
  local ok=$(metric 'warden_http_requests_total{route="/v1/check",status="200"}')
  local refused=$(metric 'warden_http_requests_total{route="/v1/check",status="422"}')
  local rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  local redis_timeouts=$(metric 'warden_redis_errors_total{kind="timeout"}')
  local redis_errors=$(metric 'warden_redis_errors_total{kind="error"}')
  local fallbacks=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^warden_redis_fallbacks_total/ {n += $2} END {print n + 0}')
  local redis_calls=$(metric 'warden_redis_latency_seconds_count')
  # p50 and p99 of the Redis calls, as the upper bounds of their histogram buckets.
  local redis_pct=$(curl -s "http://127.0.0.1:$PORT/metrics" | python3 -c "
import re, sys
b = [(float(m.group(1)), float(m.group(2))) for m in re.finditer(r'^warden_redis_latency_seconds_bucket\{le=\"([^\"+]+)\"\} (\S+)', sys.stdin.read(), re.M)]
n = b[-1][1] if b else 0
q = lambda p: next((f'{le*1000:g}' for le, c in b if c >= p * n), '-') if n else '-'
print(f'p50 <= {q(0.5)} ms, p99 <= {q(0.99)} ms')")
  kill -TERM "$pid"
  wait "$pid" || true
  local rows=$($count_rows)
  read -r hrps hp50 hp99 _ < <(summarise "$WORK/$name-health.txt")
  read -r crps cp50 cp99 cnon2xx < <(summarise "$WORK/$name-check.txt")
  local ratio=$(python3 -c "print(f'{100*$crps/$hrps:.0f}%')")
  local audit="ok"
  [ "$rows" -eq $((ok + refused)) ] || audit="MISMATCH"
  printf '%-9s %-10s %8s %9s %9s\n' "$name" "/health" "$hrps" "$hp50" "$hp99"
  printf '%-9s %-10s %8s %9s %9s   (%s of /health; 200: %s, 422: %s; audit queue at the end: %s)\n' "$name" "/v1/check" "$crps" "$cp50" "$cp99" "$ratio" "$ok" "$refused" "$depth"
  printf '%-9s peak RSS %d MB; audit rows %s = 200 + 422 answers %s: %s\n' "$name" $((rss_kb / 1024)) "$rows" $((ok + refused)) "$audit"
  if [ "$redis_calls" != "0" ] || [ "$redis_errors" != "0" ] || [ "$redis_timeouts" != "0" ]; then
    printf '%-9s Redis calls answered %s (%s checks a call; %s), timed out %s, failed %s; checks answered by the fallback: %s\n' \
      "$name" "$redis_calls" "$(python3 -c "print(f'{($ok + $refused) / max($redis_calls, 1):.1f}')")" "$redis_pct" "$redis_timeouts" "$redis_errors" "$fallbacks"
  fi
  CHECK_RPS="$crps"
  CHECK_P99="$cp99"
}

echo "connections: $CONNS, duration: ${DURATION}s per run, wrk with 1 thread on the same 2-core machine, audit durability: ${WARDEN_AUDIT_DURABILITY:-ack}"
printf '%-9s %-10s %8s %9s %9s\n' backend endpoint "req/s" "p50 ms" "p99 ms"

SQLITE_DB="$WORK/load.db"
case " $LOAD_RUNS " in *" sqlite "*) run_backend sqlite "sqlite://$SQLITE_DB" "rows_sqlite $SQLITE_DB" ;; esac

# /v1/check throughput while the policy files change every second, against
# the same server without reloads (SQLite).
reload_compare() {
  local dir="$WORK/policies" url="sqlite://$WORK/reload.db"
  sync
  cp -r policies "$dir"
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  WARDEN_KEY=$("$BIN" keys create --customer "reload@example.com" --database-url "$url" | tail -n 1)
  export WARDEN_KEY
  RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$PORT" --database-url "$url" --policies "$dir" \
    --rate-limit-requests 1000000000 --rate-limit-window 60s >"$WORK/reload.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
  curl -s -o /dev/null -X POST "http://127.0.0.1:$PORT/api/evaluate" -H "Authorization: Bearer $WARDEN_KEY"
  wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/check.lua" "http://127.0.0.1:$PORT" >"$WORK/steady.txt"
  ( for i in $(seq "$DURATION"); do
      printf 'rule reload_probe {\n  description "probe"\n  when metadata.intent == "reload_probe"\n  score +%d\n  reason reload_probe\n}\n' "$i" >"$dir/probe.warden"
      sleep 1
    done ) &
  local editor=$!
  wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/check.lua" "http://127.0.0.1:$PORT" >"$WORK/reloading.txt"
  kill "$editor" 2>/dev/null || true
  local reloads=$(metric 'warden_policy_reload_total{result="ok"}')
  kill -TERM "$pid"; wait "$pid" || true
  read -r srps _ sp99 _ < <(summarise "$WORK/steady.txt")
  read -r rrps _ rp99 _ < <(summarise "$WORK/reloading.txt")
  local change=$(python3 -c "print(f'{100*($rrps-$srps)/$srps:+.1f}%')")
  printf 'reloads   /v1/check  %8s req/s (p99 %s ms) steady; %8s req/s (p99 %s ms) with %s reloads in %ss: %s\n' \
    "$srps" "$sp99" "$rrps" "$rp99" "$reloads" "$DURATION" "$change"
}
case " $LOAD_RUNS " in *" reload "*) reload_compare ;; esac

if [[ " $LOAD_RUNS " != *" postgres "* ]]; then
  :
elif pg_isready -h 127.0.0.1 -p 5432 -q; then
  DB="warden_load_$$"
  psql "$PG/postgres" -qc "CREATE DATABASE $DB" >/dev/null
  run_backend postgres "$PG/$DB" "rows_pg $DB"
  psql "$PG/postgres" -qc "DROP DATABASE $DB" >/dev/null
else
  echo "postgres: not reachable at 127.0.0.1:5432; skipped"
fi

# /v1/check with the rate limits in the process, then shared through Redis,
# on SQLite: LOAD_PAIRS pairs (default 3), alternating, each on a fresh
# database; reports every pair and the median ratio (the machine's speed
# drifts between runs, so one pair says little).
redis_compare() {
  if [ "$(redis-cli -u "$REDIS" ping 2>/dev/null)" != "PONG" ]; then
    echo "redis: not reachable at $REDIS; skipped"
    return
  fi
  local prefix="warden-load-$$:" i db local_runs=() redis_runs=() local_p99=() redis_p99=()
  for i in $(seq "${LOAD_PAIRS:-3}"); do
    db="$WORK/inproc-$i.db"
    run_backend "in-proc-$i" "sqlite://$db" "rows_sqlite $db"
    local_runs+=("$CHECK_RPS"); local_p99+=("$CHECK_P99")
    db="$WORK/redis-$i.db"
    run_backend "redis-$i" "sqlite://$db" "rows_sqlite $db" --redis-url "$REDIS" --redis-key-prefix "$prefix"
    redis_runs+=("$CHECK_RPS"); redis_p99+=("$CHECK_P99")
    rm -f "$WORK"/inproc-"$i".db* "$WORK"/redis-"$i".db*
  done
  redis-cli -u "$REDIS" --scan --pattern "${prefix}*" | xargs -r redis-cli -u "$REDIS" del >/dev/null
  pairs_report "redis    " "with Redis" "in the process" "${redis_runs[*]}" "${local_runs[*]}" "${redis_p99[*]}" "${local_p99[*]}"
}
case " $LOAD_RUNS " in *" redis "*) redis_compare ;; esac

# /v1/check with a webhook endpoint registered for decision events (a
# receiver on loopback that answers 200), against the same run without one,
# back to back on SQLite: delivery runs beside the request path and must not
# slow it. Reports the events queued and delivered during the run.
webhooks_compare() {
  local recv_port plain="$WORK/plain.db" hooked="$WORK/hooked.db"
  recv_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  python3 - "$recv_port" >"$WORK/receiver.log" 2>&1 <<'PY' &
import http.server, sys
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.end_headers()
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
PY
  local recv_pid=$!
  run_backend no-hook "sqlite://$plain" "rows_sqlite $plain"
  local prps="$CHECK_RPS" pp99="$CHECK_P99"
  "$BIN" migrate --database-url "sqlite://$hooked" >/dev/null 2>&1
  WARDEN_ADMIN=$("$BIN" keys create --customer "ops@example.com" --admin --database-url "sqlite://$hooked" | tail -n 1)
  export WARDEN_ADMIN RECV_PORT="$recv_port"
  BEFORE_LOAD='curl -sf -o /dev/null -X POST "http://127.0.0.1:$PORT/api/admin/webhooks" -H "Authorization: Bearer $WARDEN_ADMIN" -d "{\"url\":\"http://127.0.0.1:$RECV_PORT/hook\",\"events\":[\"decision.blocked\",\"decision.rejected\"]}"' \
    run_backend webhooks "sqlite://$hooked" "rows_sqlite $hooked" --webhook-allow-private
  kill "$recv_pid" 2>/dev/null || true
  local counts
  counts=$(python3 -c "
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
queued = db.execute('select count(*) from webhook_event').fetchone()[0]
sent = db.execute(\"select count(*), coalesce(sum(events), 0) from webhook_message where status = 'delivered'\").fetchone()
print(queued, sent[0], sent[1])" "$hooked")
  read -r queued requests delivered <<<"$counts"
  python3 -c "print(f'webhooks  /v1/check  {$CHECK_RPS} req/s, p99 {$CHECK_P99} ms with an endpoint registered, against {$prps} req/s, p99 {$pp99} ms without: {100*$CHECK_RPS/$prps:.0f}%; {$queued} events queued, {$delivered} delivered in {$requests} requests (at most 1 a second, 500 events each)')"
}
case " $LOAD_RUNS " in *" webhooks "*) webhooks_compare ;; esac

shadow_set_compare() {
  local shadow="$WORK/shadow-policies"
  cp -r policies "$shadow"
  python3 - "$shadow" <<'PY'
import pathlib, sys
d = pathlib.Path(sys.argv[1])
for name, pairs in {"risk.warden": [("score +50", "score +30"), ("expect blocked score 50 reason external_model", "expect allowed score 30 reason external_model"), ("expect blocked score 120", "expect blocked score 100")],
                    "models.warden": [("expect blocked score 50 reason external_model", "expect allowed score 30 reason external_model")]}.items():
    f = d / name
    text = f.read_text()
    for a, b in pairs:
        text = text.replace(a, b)
    f.write_text(text)
PY
  local without=() with=() i db
  for i in 1 2; do
    db="$WORK/plain-$i.db"
    run_backend "plain-$i" "sqlite://$db" "rows_sqlite $db"
    without+=("$CHECK_RPS")
    db="$WORK/shadow-$i.db"
    run_backend "shadow-$i" "sqlite://$db" "rows_sqlite $db" --shadow-policies "$shadow"
    with+=("$CHECK_RPS")
  done
  python3 -c "
w = [float(x) for x in '${without[*]}'.split()]; s = [float(x) for x in '${with[*]}'.split()]
print(f'shadow set /v1/check {sum(s)/len(s):.0f} req/s with a shadow set as large as the enforced one, against {sum(w)/len(w):.0f} without: {100*sum(s)/sum(w):.1f}% (runs: {s} vs {w})')"
}
case " $LOAD_RUNS " in *" shadow-set "*) shadow_set_compare ;; esac

# /v1/check with the audit hash chain against a build without it (see the
# header), alternating pairs on SQLite and on Postgres; reports each pair
# and the median ratio per backend.
chain_compare() {
  # Both binaries come from one scratch checkout of HEAD, into a target
  # directory of their own: the measured difference is the chain alone.
  local tree="$WORK/chain-tree" target="${CARGO_TARGET_DIR}-chain" on_bin="$WORK/warden-chain-on" off_bin="$WORK/warden-chain-off"
  git worktree add --detach -q "$tree" HEAD
  CARGO_TARGET_DIR="$target" cargo build --release -q -p warden-server --manifest-path "$tree/Cargo.toml" >&2
  cp "$target/release/warden" "$on_bin"
  python3 scripts/chain_off.py "$tree"
  CARGO_TARGET_DIR="$target" cargo build --release -q -p warden-server --manifest-path "$tree/Cargo.toml" >&2
  cp "$target/release/warden" "$off_bin"
  git worktree remove --force "$tree"
  local saved_bin="$BIN" backend i mode url db on=() off=() on_p99=() off_p99=()
  for backend in sqlite postgres; do
    on=(); off=(); on_p99=(); off_p99=()
    if [ "$backend" = postgres ] && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
      echo "chain: postgres not reachable at 127.0.0.1:5432 (or pg_isready missing); skipped"
      continue
    fi
    for i in $(seq "${LOAD_PAIRS:-3}"); do
      for mode in on off; do
        if [ "$backend" = sqlite ]; then
          db="$WORK/chain-$mode-$i.db"; url="sqlite://$db"
        else
          db="warden_chain_$$_${mode}_$i"; url="$PG/$db"
          psql "$PG/postgres" -qc "CREATE DATABASE $db" >/dev/null
        fi
        if [ "$mode" = on ]; then BIN="$on_bin"; else BIN="$off_bin"; fi
        run_backend "chain-$mode-$backend-$i" "$url" "rows_$backend $db"
        if [ "$mode" = on ]; then on+=("$CHECK_RPS"); on_p99+=("$CHECK_P99"); else off+=("$CHECK_RPS"); off_p99+=("$CHECK_P99"); fi
        if [ "$backend" = sqlite ]; then rm -f "$db"*; else psql "$PG/postgres" -qc "DROP DATABASE $db" >/dev/null; fi
      done
    done
    pairs_report "chain $backend" "with the chain" "without" "${on[*]}" "${off[*]}" "${on_p99[*]}" "${off_p99[*]}"
  done
  BIN="$saved_bin"
}
case " $LOAD_RUNS " in *" chain "*) chain_compare ;; esac

# Redis memory for 1,000,000 keys: a private redis-server (never the
# machine's), the rate-limit script called once for each of a million key
# ids under a quota of 1 per 60 s (so every cell lives 60 s), used_memory
# with them all live, then after they have expired by themselves.
redis_memory() {
  if ! command -v redis-server >/dev/null; then
    echo "redis-memory: redis-server not installed; skipped"
    return
  fi
  local port pid sha base peak keys after
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >"$WORK/redis-memory.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
  sha=$(redis-cli -p "$port" script load "$(cat server/src/rate_limit/gcra.lua)")
  used() { redis-cli -p "$port" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r'; }
  base=$(used)
  local started=$(date +%s.%N)
  python3 - "$sha" <<'PY' | redis-cli -p "$port" --pipe >/dev/null
import sys, uuid
sha = sys.argv[1].encode()
out = sys.stdout.buffer
def cmd(*parts):
    out.write(b"*%d\r\n" % len(parts))
    for p in parts:
        out.write(b"$%d\r\n%s\r\n" % (len(p), p))
for i in range(1_000_000):
    key = b"warden:rl:" + uuid.uuid4().hex.encode()
    cmd(b"EVALSHA", sha, b"1", key, b"limit", b"", b"1", b"60000000")
PY
  local took=$(python3 -c "import time; print(f'{time.time()-$started:.0f}')")
  keys=$(redis-cli -p "$port" dbsize)
  peak=$(used)
  echo "redis-memory: $keys keys live (made in ${took}s): used_memory $(( (peak - base) / 1048576 )) MiB above empty, $(( (peak - base) / keys )) bytes per key"
  for _ in $(seq 240); do [ "$(redis-cli -p "$port" dbsize)" = 0 ] && break; sleep 1; done
  after=$(used)
  echo "redis-memory: after expiry $(redis-cli -p "$port" dbsize) keys, used_memory $(( (after - base) / 1024 )) KiB above empty"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
case " $LOAD_RUNS " in *" redis-memory "*) redis_memory ;; esac
