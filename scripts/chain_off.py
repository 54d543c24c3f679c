#!/usr/bin/env python3
"""Makes the checkout at argv[1] a measurement build without the audit hash
chain on usage rows: the audit writer neither encodes nor hashes them (their
prev_hash and row_hash are stored empty), everything else unchanged. Used by
`LOAD_RUNS=chain scripts/loadtest.sh` to measure what the chain costs; never
run on a checkout that serves traffic. Exits 1 if the code it edits has
moved, so the measurement can't silently compare two equal builds."""
import pathlib
import sys

EDITS = {
    "server/src/store/audit.rs": [
        # No canonical encoding of each row…
        (
            """        let encodings: Vec<Vec<u8>> = rows
            .iter()
            .zip(&times)
            .zip(metas.iter().zip(contributions.iter().zip(&shadows)))
            .map(|((r, at), (meta, (c, shadow)))| {
                crate::audit::chain::encode_usage_canonical(
                    &usage_fields(r, *at),
                    meta,
                    c.as_deref(),
                    shadow.as_deref(),
                )
            })
            .collect();
""",
            "        let encodings: Vec<Vec<u8>> = vec![Vec::new(); rows.len()];\n",
        ),
        # …and no SHA-256 link.
        (
            "let hash = crate::audit::chain::link(&prev, encoding);",
            "let hash = { let _ = encoding; String::new() };",
        ),
    ],
}


def main() -> int:
    root = pathlib.Path(sys.argv[1])
    for rel, edits in EDITS.items():
        path = root / rel
        text = path.read_text()
        for old, new in edits:
            if text.count(old) != 1:
                print(f"chain_off.py: {rel}: expected one {old.strip()!r}; the code moved, update this script", file=sys.stderr)
                return 1
            text = text.replace(old, new)
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
