#!/usr/bin/env python3
"""Admin log queries at a million audit rows.

Fills a fresh database with N rows (default 1,000,000; 100 customers, 30
days, a mix of outcomes) straight through SQL, starts the release binary on
it, and times each /api/admin/logs and /api/admin/stats query and the
dashboard's pages: overview, status, the decision log with no filter and
under each filter, a deep page, one decision, the admin trail (median of 5,
over HTTP on loopback), and a CSV export of one customer's rows. SQLite
always; Postgres too when reachable.
Usage: scripts/logs_bench.py [rows]
"""
import datetime, http.client, json, os, random, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.parse, uuid

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/warden/target"))
binary = os.path.join(target, "release", "warden")
env = dict(os.environ, WARDEN_BCRYPT_COST="4", RUST_LOG="warn")
random.seed(7)
customers = [uuid.UUID(int=i + 1) for i in range(100)]
key_id = uuid.UUID(int=999)
now = datetime.datetime.now(datetime.timezone.utc)
REASONS = [("allowed", "ok", 0), ("blocked", "contains_personal_data", 70), ("blocked", "external_model", 50), ("rejected", "forbidden_field", 0)]
MODELS = ["gpt-4", "gpt-4o", "claude-3-5-sonnet", "llama-3"]

def generate():
    for i in range(rows):
        status, reason, score = REASONS[i % 4]
        at = now - datetime.timedelta(seconds=(rows - i) * (30 * 86400 / rows))
        yield (uuid.uuid4(), f"req-{i}", customers[i % 100], MODELS[i % 7 % 4], "classify", score, status != "blocked" and status != "rejected", status, reason, at)

def fill_sqlite(path):
    import sqlite3
    c = sqlite3.connect(path)
    c.executemany(
        "INSERT INTO usage_log (decision_id, request_id, customer_id, api_key_id, model, operation, meta, risk_score, allowed, status, reason, policy_version, latency_us, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        ((d.bytes, r, c_.bytes, key_id.bytes, m, o, "{}", s, int(a), st, re, "bench", 10, t.isoformat(timespec="microseconds")) for d, r, c_, m, o, s, a, st, re, t in generate()))
    # Rows written here bypass the audit writer, which keeps the daily
    # rollup; fill it the way the migration does.
    c.execute("INSERT INTO usage_rollup (day, status, reason, has_model, model, count) SELECT substr(created_at, 1, 10), status, reason, model IS NOT NULL, COALESCE(model, ''), COUNT(*) FROM usage_log GROUP BY 1, 2, 3, 4, 5")
    c.commit()

def fill_postgres(url):
    data = "".join(f"{d}\t{r}\t{c_}\t{key_id}\t{m}\t{o}\t{{}}\t{s}\t{'t' if a else 'f'}\t{st}\t{re}\tbench\t10\t{t.isoformat()}\n" for d, r, c_, m, o, s, a, st, re, t in generate())
    subprocess.run(["psql", url, "-qc", "COPY usage_log (decision_id, request_id, customer_id, api_key_id, model, operation, meta, risk_score, allowed, status, reason, policy_version, latency_us, created_at) FROM STDIN"],
                   input=data, text=True, check=True)
    subprocess.run(["psql", url, "-qc", "INSERT INTO usage_rollup (day, status, reason, has_model, model, count) SELECT (created_at AT TIME ZONE 'UTC')::date, status, reason, model IS NOT NULL, COALESCE(model, ''), COUNT(*) FROM usage_log GROUP BY 1, 2, 3, 4, 5"], check=True)
    subprocess.run(["psql", url, "-qc", "ANALYZE usage_log"], check=True)

def bench(name, url, fill):
    subprocess.run([binary, "migrate", "--database-url", url], env=env, check=True, capture_output=True)
    t0 = time.time(); fill(); filled = time.time() - t0
    admin = subprocess.run([binary, "keys", "create", "--admin", "--customer", "ops@example.com", "--database-url", url],
                           env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    server = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--database-url", url,
                               "--policies", os.path.join(root, "policies")], env=env)
    try:
        for _ in range(100):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port); conn.request("GET", "/health"); conn.getresponse().read(); break
            except OSError:
                time.sleep(0.1)
        frm = (now - datetime.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        def get(path):
            conn.request("GET", path, headers={"Authorization": f"Bearer {admin}"})
            r = conn.getresponse(); body = json.loads(r.read())
            assert r.status == 200, (path, body)
            return body
        first = get("/api/admin/logs?page_size=50")
        last_id = first["items"][-1]["id"]
        queries = [
            ("newest page", "/api/admin/logs?page_size=50"),
            ("status=blocked", "/api/admin/logs?status=blocked&page_size=50"),
            ("one customer", f"/api/admin/logs?customer_id={customers[3]}&page_size=50"),
            ("last 2 days", f"/api/admin/logs?from={frm}&page_size=50"),
            ("customer + 2 days", f"/api/admin/logs?customer_id={customers[3]}&from={frm}&page_size=50"),
            ("next page by before_id", f"/api/admin/logs?before_id={last_id}&page_size=50"),
            ("page 200 by offset", "/api/admin/logs?page=200&page_size=50"),
            ("stats, 7 days", "/api/admin/stats?days=7"),
        ]
        print(f"{name}: {rows:,} rows (filled in {filled:.0f} s)")
        for label, path in queries:
            times = []
            for _ in range(5):
                t = time.perf_counter(); body = get(path); times.append((time.perf_counter() - t) * 1000)
            total = body.get("total", "")
            print(f"  {label:<26} median {statistics.median(times):7.1f} ms   total {total}")
        # Dashboard pages: sign in once (same origin), then time each page
        # with the session cookie.
        conn.request("POST", "/ui/login", body=urllib.parse.urlencode({"key": admin}),
                     headers={"Origin": f"http://127.0.0.1:{port}", "Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse(); r.read()
        assert r.status == 303, ("sign-in", r.status)
        cookie = r.getheader("Set-Cookie").split(";")[0]
        stopped = set()
        def page(path):
            conn.request("GET", path, headers={"Cookie": cookie})
            r = conn.getresponse(); html = r.read()
            assert r.status == 200, (path, r.status, html[:300])
            if b"so the search was stopped" in html:
                stopped.add(path)
        to = (now - datetime.timedelta(days=29)).strftime("%Y-%m-%dT%H:%M:%SZ")
        deep = first["items"][-1]["id"] - rows // 2
        pages = [
            ("dashboard overview", "/ui/"), ("dashboard status", "/ui/status"),
            ("/ui/logs", "/ui/logs"),
            ("/ui/logs status=rejected", "/ui/logs?status=rejected"),
            ("/ui/logs model=llama-3", "/ui/logs?model=llama-3"),
            ("/ui/logs operation", "/ui/logs?operation=classify"),
            ("/ui/logs customer_id", f"/ui/logs?customer_id={customers[3]}"),
            ("/ui/logs reason", "/ui/logs?reason=external_model"),
            ("/ui/logs from 2 days", f"/ui/logs?from={frm}"),
            ("/ui/logs to 29 days ago", f"/ui/logs?to={to}"),
            ("/ui/logs deep page", f"/ui/logs?before={deep}"),
            ("/ui/logs model=absent", "/ui/logs?model=absent"),
            # Two equality filters: one index range, the other checked row
            # by row. Few matches, then none among 250,000 (the page stops
            # at its budget and asks for a time range), then that with one.
            ("/ui/logs model+customer", f"/ui/logs?model=llama-3&customer_id={customers[3]}"),
            ("/ui/logs status+reason, 0", "/ui/logs?status=rejected&reason=ok"),
            ("/ui/logs status+reason+2d", f"/ui/logs?status=rejected&reason=ok&from={frm}"),
            ("/ui/logs/{decision}", f"/ui/logs/{first['items'][0]['decision_id']}"),
            ("/ui/audit", "/ui/audit"),
            ("/ui/audit action", "/ui/audit?action=key.create"),
        ]
        for label, path in pages:
            times = []
            for _ in range(5):
                t = time.perf_counter(); page(path); times.append((time.perf_counter() - t) * 1000)
            note = "   (stopped at the budget: asks for a narrower filter)" if path in stopped else ""
            print(f"  {label:<26} median {statistics.median(times):7.1f} ms{note}")
        # CSV exports, streamed: one customer's rows (10,000), then the
        # newest 100,000 (the cap). The server's peak resident memory after
        # each shows whether memory stays flat as the export grows.
        def peak_rss_mb():
            with open(f"/proc/{server.pid}/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
        print(f"  {'server peak RSS so far':<26} {peak_rss_mb():7.1f} MB")
        for label, path in [("CSV, one customer", f"/ui/logs.csv?customer_id={customers[3]}"), ("CSV, 100,000 rows", "/ui/logs.csv")]:
            t = time.perf_counter()
            conn.request("GET", path, headers={"Cookie": cookie})
            r = conn.getresponse(); exported = 0; size = 0
            while chunk := r.read(65536):
                exported += chunk.count(b"\n"); size += len(chunk)
            assert r.status == 200
            took = (time.perf_counter() - t) * 1000
            print(f"  {label:<26} {took:7.1f} ms   {exported - 1:,} rows, {size / 1e6:.1f} MB   server peak RSS {peak_rss_mb():.1f} MB")
    finally:
        server.send_signal(signal.SIGTERM); server.wait()

work = tempfile.mkdtemp()
try:
    db = os.path.join(work, "logs.db")
    bench("sqlite", f"sqlite://{db}", lambda: fill_sqlite(db))
    if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0:
        name = f"warden_logs_{os.getpid()}"
        subprocess.run(["psql", "postgres://postgres@127.0.0.1:5432/postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
        url = f"postgres://postgres@127.0.0.1:5432/{name}"
        try:
            bench("postgres", url, lambda: fill_postgres(url))
        finally:
            subprocess.run(["psql", "postgres://postgres@127.0.0.1:5432/postgres", "-qc", f"DROP DATABASE {name}"])
finally:
    shutil.rmtree(work, ignore_errors=True)
