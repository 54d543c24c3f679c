#!/usr/bin/env python3
"""Replay speed at a million audit rows.

Fills a fresh database with N decided rows (default 1,000,000; 100
customers over 7 days, the declared fields of the default policies on each
row, as the service records them) straight through SQL, records the
default policies' declarations for the rows' policy version, then times
`warden replay` (release build) of the last 8 days against a candidate
(the default policies with external models scoring 30 instead of 50).
SQLite always; Postgres too when reachable.
Usage: scripts/replay_bench.py [rows]
"""
import datetime, json, os, random, shutil, subprocess, sys, tempfile, time, uuid

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/warden/target"))
binary = os.path.join(target, "release", "warden")
env = dict(os.environ, RUST_LOG="warn")
random.seed(11)
customers = [uuid.UUID(int=i + 1) for i in range(100)]
key_id = uuid.UUID(int=999)
now = datetime.datetime.now(datetime.timezone.utc)
VERSION = "benchversion0001"
# What the default policies declare (path: default), as `policy_version` holds it.
DECLARED = {"model": None, "operation": None, "metadata.intent": None,
            "metadata.contains_personal_data": False, "metadata.is_external_model": False}
FORBIDDEN = ["prompt", "text", "input", "message", "messages", "content"]

def generate():
    for i in range(rows):
        pii, ext = i % 5 == 0, i % 3 == 0
        score = 70 * pii + 50 * ext
        allowed = score < 50
        reason = "contains_personal_data" if pii else ("external_model" if ext else "ok")
        contributions = [c for c, on in (("contains_personal_data", pii), ("external_model", ext)) if on]
        contributions = [{"rule": c, "score": 70 if c == "contains_personal_data" else 50} for c in contributions]
        meta = {"model": "gpt-4", "operation": "classify", "metadata.contains_personal_data": pii, "metadata.is_external_model": ext}
        if i % 7 == 0:
            meta["metadata.intent"] = "spam_detection"
        at = now - datetime.timedelta(seconds=(rows - i) * (7 * 86400 / rows))
        yield (uuid.uuid4(), f"req-{i}", customers[i % 100], json.dumps(meta, separators=(",", ":")), score, allowed,
               "allowed" if allowed else "blocked", reason, json.dumps(contributions, separators=(",", ":")), at)

def fill_sqlite(path):
    import sqlite3
    c = sqlite3.connect(path)
    c.executemany(
        "INSERT INTO usage_log (decision_id, request_id, customer_id, api_key_id, model, operation, meta, risk_score, allowed, status, reason, policy_version, latency_us, created_at, contributions) VALUES (?,?,?,?,'gpt-4','classify',?,?,?,?,?,?,10,?,?)",
        ((d.bytes, r, c_.bytes, key_id.bytes, m, s, int(a), st, re, VERSION, t.isoformat(timespec="microseconds"), co) for d, r, c_, m, s, a, st, re, co, t in generate()))
    c.execute("INSERT INTO policy_version (version, declared, forbidden, first_seen) VALUES (?, ?, ?, ?)", (VERSION, json.dumps(DECLARED), json.dumps(FORBIDDEN), now.isoformat()))
    c.commit()

def fill_postgres(url):
    data = "".join(f"{d}\t{r}\t{c_}\t{key_id}\tgpt-4\tclassify\t{m}\t{s}\t{'t' if a else 'f'}\t{st}\t{re}\t{VERSION}\t10\t{t.isoformat()}\t{co}\n" for d, r, c_, m, s, a, st, re, co, t in generate())
    subprocess.run(["psql", url, "-qc", "COPY usage_log (decision_id, request_id, customer_id, api_key_id, model, operation, meta, risk_score, allowed, status, reason, policy_version, latency_us, created_at, contributions) FROM STDIN"],
                   input=data, text=True, check=True)
    subprocess.run(["psql", url, "-qc", f"INSERT INTO policy_version (version, declared, forbidden, first_seen) VALUES ('{VERSION}', '{json.dumps(DECLARED)}', '{json.dumps(FORBIDDEN)}', now()); ANALYZE usage_log"], check=True)

def bench(name, url, fill, candidate):
    subprocess.run([binary, "migrate", "--database-url", url], env=env, check=True, capture_output=True)
    t0 = time.time(); fill(); filled = time.time() - t0
    t = time.perf_counter()
    out = subprocess.run([binary, "replay", "--policies", candidate, "--since", "8d", "--format", "json", "--database-url", url],
                         env=env, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - t
    r = json.loads(out)
    print(f"{name}: {rows:,} rows (filled in {filled:.0f} s)")
    print(f"  replayed {r['replayed']:,} of {r['rows']:,} in {wall:.1f} s wall ({r['rows'] * 60 / wall:,.0f} rows/min; "
          f"{r['rows_per_minute']:,.0f} rows/min inside the replay)")
    print(f"  unchanged {r['unchanged']:,}, blocked->allowed {r['blocked_to_allowed']:,}, score changed {r['score_changed']:,}, "
          f"not replayed {r['not_replayed']['total']:,}")

work = tempfile.mkdtemp()
try:
    candidate = os.path.join(work, "candidate")
    shutil.copytree(os.path.join(root, "policies"), candidate)
    risk = os.path.join(candidate, "risk.warden")
    with open(risk) as f:
        text = f.read()
    with open(risk, "w") as f:
        f.write(text.replace("score +50", "score +30"))
    db = os.path.join(work, "replay.db")
    bench("sqlite", f"sqlite://{db}", lambda: fill_sqlite(db), candidate)
    if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0:
        name = f"warden_replay_{os.getpid()}"
        subprocess.run(["psql", "postgres://postgres@127.0.0.1:5432/postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
        url = f"postgres://postgres@127.0.0.1:5432/{name}"
        try:
            bench("postgres", url, lambda: fill_postgres(url), candidate)
        finally:
            subprocess.run(["psql", "postgres://postgres@127.0.0.1:5432/postgres", "-qc", f"DROP DATABASE {name}"], check=True)
finally:
    shutil.rmtree(work)
