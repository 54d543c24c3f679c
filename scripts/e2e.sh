#!/usr/bin/env bash
# Browser end-to-end tests of the dashboard: starts the debug `warden`
# binary on a free loopback port with a fresh SQLite database, creates an
# admin, a viewer and an app key, and runs the Playwright scenarios in
# e2e/tests/ (node's test runner) in headless Chromium from the system
# (/usr/bin/chromium; Playwright downloads no browser). Builds nothing.
# Screenshots of every page in both themes go to
# $CARGO_TARGET_DIR/e2e-screenshots/.
#
# Usage: scripts/e2e.sh [--update-images] [node --test arguments...]
#   --update-images  afterwards, copy the overview, logs and playground
#                    (after Decide) screenshots, light theme, to
#                    docs/images/, compressed with pngquant when installed.
# Needs: the debug binary ($CARGO_TARGET_DIR/debug/warden, or $WARDEN_BIN; built by
# `cargo test` or `cargo build`), node >= 20, `npm ci --prefix e2e`, and
# chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET="${CARGO_TARGET_DIR:-target}"
BIN="${WARDEN_BIN:-$TARGET/debug/warden}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
update_images=0
if [[ "${1:-}" == "--update-images" ]]; then
  update_images=1
  shift
fi

if [[ ! -x "$BIN" ]]; then
  echo "e2e: $BIN is missing; build it first (cargo build -p warden-server)" >&2
  exit 1
fi
if [[ ! -x "$CHROMIUM" ]]; then
  echo "e2e: $CHROMIUM is missing (apt-get install chromium)" >&2
  exit 1
fi
if [[ ! -d e2e/node_modules/playwright-core ]]; then
  echo "e2e: e2e/node_modules is missing; run npm ci --prefix e2e" >&2
  exit 1
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
# The tests change rules and settings: they get a copy of the policy files.
cp -r policies "$work/policies"

key() { "$BIN" keys create --bcrypt-cost 4 --database-url "$db" "$@" | tail -n 1; }
app_customer="app@example.com"
app_key="$(key --customer "$app_customer" --name "e2e app")"
admin_key="$(key --customer admin@example.com --name "e2e admin" --admin)"
viewer_key=""
if "$BIN" keys create --help | grep -q -- '--viewer'; then
  viewer_key="$(key --customer admin@example.com --name "e2e viewer" --viewer)"
else
  echo "e2e: this build has no \`keys create --viewer\`: the viewer scenario is skipped" >&2
fi

# Plain HTTP on loopback: the session cookie can't be Secure. Limits the
# run can't reach, all its requests coming from one address: the request
# quota, failed keys (it checks that deleted keys get 401) and sign-ins
# (the sign-in limit has Rust tests).
"$BIN" serve --listen "127.0.0.1:$port" --database-url "$db" --policies "$work/policies" \
  --audit-spill-dir "$work/spill" --rate-limit-requests 1000000000 --bcrypt-cost 4 --no-watch \
  --auth-failure-limit 1000000 --sign-in-limit 1000 --cookie-secure=false \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  if curl -fsS "$base/health" >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "e2e: warden serve exited at start-up:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.1
done

mkdir -p "$TARGET/e2e-screenshots"
screenshots="$(cd "$TARGET/e2e-screenshots" && pwd)"
status=0
(
  cd e2e
  WARDEN_E2E_URL="$base" WARDEN_E2E_ADMIN_KEY="$admin_key" WARDEN_E2E_APP_KEY="$app_key" \
    WARDEN_E2E_VIEWER_KEY="$viewer_key" WARDEN_E2E_APP_CUSTOMER="$app_customer" \
    WARDEN_E2E_WORK="$work" WARDEN_E2E_SCREENSHOTS="$screenshots" \
    node --test --test-concurrency=1 --test-timeout=120000 "$@"
) || status=$?

if [[ "$status" -ne 0 ]]; then
  echo "e2e: failures above; the server's log is below" >&2
  tail -n 40 "$work/server.log" >&2
elif [[ "$update_images" -eq 1 ]]; then
  mkdir -p docs/images
  for page in overview logs playground; do
    src="$screenshots/$page-light.png"
    # The playground after Decide, showing a decision and its trace.
    [[ "$page" == playground ]] && src="$screenshots/playground-decision-light.png"
    if command -v pngquant >/dev/null; then
      pngquant --force --strip --speed 1 --quality 60-85 --output "docs/images/$page.png" "$src"
    else
      cp "$src" "docs/images/$page.png"
    fi
  done
  ls -l docs/images
fi
exit "$status"
