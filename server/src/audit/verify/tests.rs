#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests fail loudly

use super::*;

/// A well-formed chain of `n` rows (hashes are stand-ins: the walk only
/// compares them).
fn chain(n: i64) -> Vec<ChainRow> {
    let mut prev = GENESIS.to_owned();
    (1..=n)
        .map(|seq| {
            let hash = format!("{seq:064x}");
            ChainRow {
                id: seq * 10,
                seq,
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                row_hash: hash.clone(),
                recomputed: Some(hash),
            }
        })
        .collect()
}

fn walk(rows: &[ChainRow]) -> Vec<Problem> {
    let mut w = Walk::new(Chain::UsageLog);
    for i in 0..rows.len() {
        w.step(&rows[i], &rows[..i], &rows[i + 1..]);
    }
    w.problems
}

fn kinds(rows: &[ChainRow]) -> Vec<(Damage, i64)> {
    walk(rows).iter().map(|p| (p.kind, p.id.unwrap())).collect()
}

#[test]
fn an_intact_chain_has_no_problem() {
    assert!(walk(&chain(50)).is_empty());
}

#[test]
fn an_altered_row_is_named_once() {
    let mut rows = chain(10);
    rows[4].recomputed = Some("changed".into());
    assert_eq!(kinds(&rows), vec![(Damage::Altered, 50)]);
    rows[4].recomputed = None;
    assert_eq!(kinds(&rows), vec![(Damage::Altered, 50)]);
}

#[test]
fn an_altered_row_with_its_hash_rewritten_breaks_the_next_link() {
    let mut rows = chain(10);
    rows[4].row_hash = "rehashed".into();
    rows[4].recomputed = Some("rehashed".into());
    assert_eq!(kinds(&rows), vec![(Damage::BrokenLink, 60)]);
}

#[test]
fn a_removed_row_is_named() {
    let mut rows = chain(10);
    rows.remove(4);
    let p = walk(&rows);
    assert_eq!((p.len(), p[0].kind, p[0].id, p[0].rows), (1, Damage::Removed, Some(60), 1));
    let mut rows = chain(10);
    rows.remove(0);
    assert_eq!(kinds(&rows), vec![(Damage::Removed, 20)]);
}

#[test]
fn an_inserted_row_is_named_however_it_was_linked() {
    // Slipped in with garbage links, positions shifted to make room.
    let mut rows = chain(10);
    for r in &mut rows[4..] {
        r.seq += 1;
    }
    let fake = ChainRow { id: 999, seq: 5, prev_hash: "x".into(), row_hash: "y".into(), recomputed: Some("z".into()) };
    rows.insert(4, fake.clone());
    assert_eq!(kinds(&rows), vec![(Damage::Inserted, 999)]);
    // Linked to its predecessor, with a correct hash of its own.
    let linked =
        ChainRow { prev_hash: rows[3].row_hash.clone(), row_hash: "y".into(), recomputed: Some("y".into()), ..fake };
    rows[4] = linked.clone();
    assert_eq!(kinds(&rows), vec![(Damage::Inserted, 999)]);
    // Linked to its predecessor, with a hash that doesn't hold.
    rows[4] = ChainRow { recomputed: Some("w".into()), ..linked };
    assert_eq!(kinds(&rows), vec![(Damage::Inserted, 999)]);
    // At a position already taken.
    let mut rows = chain(10);
    let dup = ChainRow { id: 998, seq: 5, ..rows[4].clone() };
    rows.insert(5, ChainRow { prev_hash: "q".into(), ..dup });
    assert_eq!(kinds(&rows), vec![(Damage::Inserted, 998)]);
}

#[test]
fn reordered_rows_are_named_once() {
    let mut rows = chain(20);
    // Swap the contents of positions 5 and 6 (their positions stay).
    let (a, b) = (rows[4].clone(), rows[5].clone());
    rows[4] = ChainRow { seq: 5, ..b };
    rows[5] = ChainRow { seq: 6, ..a };
    let p = walk(&rows);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].kind, Damage::Reordered);
    // Far apart (within the window).
    let mut rows = chain(100);
    let (a, b) = (rows[10].clone(), rows[60].clone());
    rows[10] = ChainRow { seq: 11, ..b };
    rows[60] = ChainRow { seq: 61, ..a };
    let p = walk(&rows);
    assert!(p.iter().all(|p| p.kind == Damage::Reordered), "{p:?}");
    assert_eq!(p[0].seq, Some(11));
}
