#!/usr/bin/env bash
# Checks that the service does what its OpenAPI document says: starts the
# debug `warden` binary on a free loopback port with a fresh SQLite
# database, creates an app key and an admin key, and runs schemathesis with
# every check against /openapi.json, once per key. Exits non-zero on any
# failure.
#
# Usage: scripts/schemathesis.sh [max examples per operation, default 25]
# Needs the debug binary ($CARGO_TARGET_DIR/debug/warden, built by
# `cargo test` or `cargo build`) and python3; schemathesis is installed into
# a virtual environment under ~/.cache/warden if it is not there yet.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES="${1:-25}"
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/debug/warden"
VENV="${WARDEN_SCHEMATHESIS_VENV:-$HOME/.cache/warden/schemathesis-$SCHEMATHESIS_VERSION}"
ST="$VENV/bin/schemathesis"

if [[ ! -x "$BIN" ]]; then
  echo "schemathesis: $BIN is missing; build it first (cargo build -p warden-server)" >&2
  exit 1
fi
if ! "$ST" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  echo "schemathesis: installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

db="sqlite://$work/warden.db"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"

# Keys at bcrypt's lowest cost: the run verifies each once. The app key's
# customer id names the customer whose parameter values the run sets.
app_out="$("$BIN" keys create --customer app@example.com --bcrypt-cost 4 --database-url "$db")"
app_key="$(tail -n 1 <<<"$app_out")"
customer_id="$(grep -oE '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' <<<"$app_out" | head -n 1)"
admin_key="$("$BIN" keys create --customer admin@example.com --admin --bcrypt-cost 4 --database-url "$db" | tail -n 1)"

# A quota the run can't spend, so decisions are tested rather than 429s.
# The default policies plus a parameter, so the parameter endpoints are
# exercised past their 404 (a value of every type is generated for it).
cp -r policies "$work/policies"
cat >"$work/policies/params.warden" <<'WARDEN'
param strict_external: bool = false

rule strict_external {
  description "External models, for customers in strict mode (an API-fuzzing fixture)"
  when param.strict_external and metadata.is_external_model
  score +1
  reason strict_external
}
WARDEN
"$BIN" serve --listen "127.0.0.1:$port" --database-url "$db" --policies "$work/policies" \
  --audit-spill-dir "$work/spill" --rate-limit-requests 1000000000 --bcrypt-cost 4 --no-watch \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  if curl -fsS "$base/health" >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "schemathesis: warden serve exited at start-up:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.1
done

# What no schema can say: a candidate policy set given to
# POST /api/admin/replay must compile, and one that doesn't is a 422 with
# its diagnostics (policy_invalid) whatever the document allows; so that
# status is expected for schema-valid bodies there, and only there.
#
# A parameter's value must be of the parameter's type, which the document
# can't say per name (it allows any of the four): a value of another type is
# a 422 naming the parameter. The parameter endpoints are pointed at the
# declared parameter and at a real customer.
cat >"$work/schemathesis.toml" <<TOML
[[operations]]
include-name = "POST /api/admin/replay"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]

[[operations]]
include-path-regex = "/params/"
parameters = { "path.name" = "strict_external", "path.id" = "$customer_id" }
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "422", "429"]
TOML

status=0
for role in app admin; do
  key_var="${role}_key"
  echo "== schemathesis --checks all, ${role} key, at most $MAX_EXAMPLES examples per operation"
  # Bounded: examples per operation, and a wall-clock limit for the run.
  # Registering webhook endpoints is left out: the service would deliver the
  # run's decision events to whatever public URLs were generated, and tests
  # send traffic to this machine only (the endpoint checks are covered by
  # server/tests/it/webhooks.rs).
  if ! timeout 300 "$ST" --config-file "$work/schemathesis.toml" run "$base/openapi.json" \
    --checks all \
    --header "Authorization: Bearer ${!key_var}" \
    --max-examples "$MAX_EXAMPLES" \
    --seed 1 \
    --request-timeout 10 \
    --exclude-name "POST /api/admin/webhooks" \
    --no-color; then
    status=1
  fi
done

if [[ "$status" -ne 0 ]]; then
  echo "schemathesis: failures above; the server's log is below" >&2
  tail -n 50 "$work/server.log" >&2
fi
exit "$status"
