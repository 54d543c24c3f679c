#!/usr/bin/env python3
"""From a policy file save to the new version answering.

Starts the release binary on a copy of policies/, then 50 times: writes a
rule file with new content, and polls POST /v1/check (every ~1 ms, on one
keep-alive connection) until an answer carries the new policy version.
Prints p50, p99 and max. Usage: scripts/reload_latency.py [edits]
"""
import http.client, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

edits = int(sys.argv[1]) if len(sys.argv) > 1 else 50
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/warden/target"))
binary = os.path.join(target, "release", "warden")
work = tempfile.mkdtemp()
policies = os.path.join(work, "policies")
shutil.copytree(os.path.join(root, "policies"), policies)
db = f"sqlite://{work}/w.db"
env = dict(os.environ, WARDEN_BCRYPT_COST="4", RUST_LOG="warn")
key = subprocess.run([binary, "keys", "create", "--customer", "bench@example.com", "--database-url", db],
                     env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
server = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--database-url", db,
                           "--policies", policies, "--rate-limit-requests", "1000000000"], env=env)
body = json.dumps({"model": "gpt-4", "operation": "classify", "metadata": {"intent": "reload_probe"}})
headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

def version(conn):
    conn.request("POST", "/v1/check", body, headers)
    r = conn.getresponse()
    return json.loads(r.read())["policy_version"]

try:
    for _ in range(200):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port); version(conn); break
        except OSError:
            time.sleep(0.05)
    latencies = []
    for i in range(edits):
        before = version(conn)
        rule = f'rule reload_probe {{\n  description "probe {i}"\n  when metadata.intent == "reload_probe"\n  score +{i + 1}\n  reason reload_probe\n}}\n'
        start = time.perf_counter()
        with open(os.path.join(policies, "probe.warden"), "w") as f:
            f.write(rule)
        while version(conn) == before:
            time.sleep(0.001)
            if time.perf_counter() - start > 10:
                raise SystemExit(f"edit {i}: no new version after 10 s")
        latencies.append((time.perf_counter() - start) * 1000)
        time.sleep(0.1)
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(round(q * (len(latencies) - 1))))]
    print(f"{edits} edits: p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {latencies[-1]:.1f} ms "
          f"(debounce 40 ms included)")
finally:
    server.send_signal(signal.SIGTERM); server.wait()
    shutil.rmtree(work, ignore_errors=True)
