#!/usr/bin/env python3
"""An independent implementation of Warden's audit chain encoding, v1
(docs/architecture.md, "The audit hash chain"), in the standard library.

    scripts/audit_chain.py fill sqlite:///tmp/a.db 1000000
    scripts/audit_chain.py fill postgres://postgres@127.0.0.1:5432/db 1000000

`fill` appends N chained usage_log rows to a migrated Warden database (run
`warden migrate` first) and moves the chain head, so that `warden audit
verify` can be timed on a large table; that verify then passes shows this
file and the Rust implementation agree. Postgres rows go through psql COPY.
JSON is canonicalised with sort_keys and compact separators, which is RFC
8785 for the values used here (ASCII keys and strings, integers, booleans).
"""
import hashlib
import json
import struct
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

NULL = b"\xff\xff\xff\xff"


def field(value):
    if value is None:
        return NULL
    data = value.encode()
    return struct.pack(">I", len(data)) + data


def encode_usage(row):
    return b"".join(
        field(v)
        for v in [
            "warden.audit.v1",
            "usage_log",
            str(row["decision_id"]),
            row["request_id"],
            str(row["customer_id"]),
            str(row["api_key_id"]),
            row["model"],
            row["operation"],
            json.dumps(row["meta"], sort_keys=True, separators=(",", ":")),
            str(row["risk_score"]),
            "true" if row["allowed"] else "false",
            row["status"],
            row["reason"],
            row["policy_version"],
            str(row["latency_us"]),
            row["created_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        ]
    )


def link(prev_hex, encoding):
    return hashlib.sha256(bytes.fromhex(prev_hex) + encoding).hexdigest()


def rows(n, seq, prev):
    start = datetime.now(timezone.utc).replace(microsecond=123456) - timedelta(days=1)
    customer, key = uuid.uuid4(), uuid.uuid4()
    for i in range(n):
        blocked = i % 3 == 1
        row = {
            "decision_id": uuid.uuid4(),
            "request_id": f"fill-{i}",
            "customer_id": customer,
            "api_key_id": key,
            "model": "gpt-4",
            "operation": None if i % 5 == 0 else "classify",
            "meta": {"metadata.contains_personal_data": blocked, "metadata.intent": "spam_detection"},
            "risk_score": 120 if blocked else 0,
            "allowed": not blocked,
            "status": "blocked" if blocked else "allowed",
            "reason": "contains_personal_data" if blocked else "ok",
            "policy_version": "0889fb2cb0fc3ad6",
            "latency_us": 7 + i % 11,
            "created_at": start + timedelta(microseconds=i),
        }
        seq += 1
        row["chain_seq"], row["prev_hash"] = seq, prev
        prev = row["row_hash"] = link(prev, encode_usage(row))
        yield row


COLUMNS = (
    "decision_id, request_id, customer_id, api_key_id, model, operation, meta, risk_score, allowed, "
    "status, reason, policy_version, latency_us, created_at, chain_seq, prev_hash, row_hash"
)


def fill_sqlite(path, n):
    import sqlite3

    db = sqlite3.connect(path)
    seq, prev = db.execute("select seq, head_hash from audit_chain where chain = 'usage_log'").fetchone()
    last = (seq, prev)
    batch = []

    def flush():
        db.executemany(f"insert into usage_log ({COLUMNS}) values ({', '.join('?' * 17)})", batch)
        batch.clear()

    for r in rows(n, seq, prev):
        batch.append(
            (
                r["decision_id"].bytes, r["request_id"], r["customer_id"].bytes, r["api_key_id"].bytes,
                r["model"], r["operation"], json.dumps(r["meta"]), r["risk_score"], int(r["allowed"]),
                r["status"], r["reason"], r["policy_version"], r["latency_us"],
                r["created_at"].isoformat(timespec="microseconds"), r["chain_seq"], r["prev_hash"], r["row_hash"],
            )
        )
        last = (r["chain_seq"], r["row_hash"])
        if len(batch) >= 10_000:
            flush()
    flush()
    db.execute("update audit_chain set seq = ?, head_hash = ? where chain = 'usage_log'", last)
    db.commit()
    return last


def fill_postgres(url, n):
    psql = ["psql", url, "-qtAX", "-v", "ON_ERROR_STOP=1"]
    seq, prev = subprocess.run(
        psql + ["-F", " ", "-c", "select seq, head_hash from audit_chain where chain = 'usage_log'"],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    seq = int(seq)
    last = (seq, prev)
    copy = subprocess.Popen(psql + ["-c", f"COPY usage_log ({COLUMNS}) FROM STDIN WITH (FORMAT csv)"],
                            stdin=subprocess.PIPE, text=True)
    import csv

    out = csv.writer(copy.stdin)
    for r in rows(n, seq, prev):
        out.writerow([
            r["decision_id"], r["request_id"], r["customer_id"], r["api_key_id"], r["model"],
            "" if r["operation"] is None else r["operation"], json.dumps(r["meta"]), r["risk_score"],
            "t" if r["allowed"] else "f", r["status"], r["reason"], r["policy_version"], r["latency_us"],
            r["created_at"].isoformat(timespec="microseconds"), r["chain_seq"], r["prev_hash"], r["row_hash"],
        ])
        last = (r["chain_seq"], r["row_hash"])
    copy.stdin.close()
    if copy.wait() != 0:
        sys.exit("COPY failed")
    subprocess.run(psql + ["-c", f"update audit_chain set seq = {last[0]}, head_hash = '{last[1]}' "
                           "where chain = 'usage_log'"], check=True)
    return last


def main():
    if len(sys.argv) != 4 or sys.argv[1] != "fill":
        sys.exit(__doc__)
    url, n = sys.argv[2], int(sys.argv[3])
    if url.startswith("sqlite://"):
        last = fill_sqlite(url[len("sqlite://"):], n)
    elif url.startswith(("postgres://", "postgresql://")):
        last = fill_postgres(url, n)
    else:
        sys.exit("expected sqlite://PATH or postgres://…")
    print(f"usage_log chain now ends at position {last[0]}, hash {last[1]}")


if __name__ == "__main__":
    main()
