//! Property tests over every decoder of outside input (`chatcap::decoders`), the fallback
//! of the fuzz targets in `fuzz/` that always runs: the seeds of `fuzz/seeds/<kind>/`
//! (requests, frames and files from the tests and the shipped scenarios), the seeds
//! mutated (bytes flipped, cut, inserted, repeated), and arbitrary bytes. A decoder may
//! refuse anything; it may not panic, and what it accepts must survive being encoded and
//! decoded again (the entries check that themselves). A case that ever fails is kept in
//! `tests/decoders/main.proptest-regressions` and replayed first on every run.

use std::path::{Path, PathBuf};

use chatcap::decoders::{decode, KINDS};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

fn seed_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(kind)
}

/// The seed inputs of `kind`, sorted by file name.
fn seeds(kind: &str) -> Vec<Vec<u8>> {
    let dir = seed_dir(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("a seed file"))
        .collect()
}

/// One change to an input.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR the byte at (position mod length) with a non-zero mask.
    Flip(usize, u8),
    /// Keep only the first (position mod length + 1) bytes.
    Cut(usize),
    /// Insert bytes at (position mod length + 1).
    Insert(usize, Vec<u8>),
    /// Repeat a slice of up to 16 bytes starting at (position mod length).
    Repeat(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(at, mask)| Mutation::Flip(at, mask)),
        any::<usize>().prop_map(Mutation::Cut),
        (
            any::<usize>(),
            prop::collection::vec(
                prop_oneof![
                    any::<u8>(),
                    // Bytes that matter to the formats: quotes, brackets, separators,
                    // digits, newlines.
                    prop::sample::select(b"\"{}[],:=.\n0123456789-e".to_vec()),
                ],
                1..8
            )
        )
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<usize>(), 1usize..16).prop_map(|(at, n)| Mutation::Repeat(at, n)),
    ]
}

fn mutate(mut input: Vec<u8>, changes: &[Mutation]) -> Vec<u8> {
    for m in changes {
        if input.is_empty() {
            input.push(0);
        }
        let len = input.len();
        match m {
            Mutation::Flip(at, mask) => input[at % len] ^= mask,
            Mutation::Cut(at) => input.truncate(at % len + 1),
            Mutation::Insert(at, bytes) => {
                let at = at % len + 1;
                input.splice(at..at, bytes.iter().copied());
            }
            Mutation::Repeat(at, n) => {
                let at = at % len;
                let piece: Vec<u8> = input[at..(at + n).min(len)].to_vec();
                input.splice(at..at, piece);
            }
        }
    }
    input
}

/// Every seed is decoded without a panic; those expected to be valid are accepted.
#[test]
fn every_seed_decodes_or_is_refused() {
    for kind in KINDS {
        let all = seeds(kind);
        assert!(!all.is_empty(), "no seeds for {kind}");
        let accepted = all.iter().filter(|s| decode(kind, s).is_ok()).count();
        // Every kind's seeds are mostly valid inputs (a few requests are the documented
        // refusals): the mutations start from something each decoder takes.
        assert!(
            accepted * 2 > all.len(),
            "{kind}: only {accepted} of {} seeds decode",
            all.len()
        );
    }
}

/// Inputs that once broke a decoder (found by scripts/fuzz), replayed on every run.
const REGRESSIONS: &[(&str, &[u8])] = &[
    // An admin reply holding a long decimal read back one unit in the last place off
    // (serde_json without `float_roundtrip`).
    (
        "pool_frame",
        b"\x15\n44443333333333333333333333333333333333344444488",
    ),
];

#[test]
fn inputs_that_once_broke_a_decoder_decode() {
    for (kind, input) in REGRESSIONS {
        // Refused or accepted, each must come back without a panic.
        let _ = decode(kind, input);
    }
}

/// scripts/fuzz runs one kind per folder of fuzz/seeds: the folders are the kinds.
#[test]
fn the_seed_folders_are_the_kinds() {
    let mut folders: Vec<String> = std::fs::read_dir(seed_dir(""))
        .expect("fuzz/seeds")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    folders.sort();
    let mut kinds: Vec<&str> = KINDS.to_vec();
    kinds.sort_unstable();
    assert_eq!(folders, kinds);
}

#[test]
fn the_shipped_files_decode() {
    for (kind, folder) in [
        ("topology", "scenarios/topologies"),
        ("profile", "scenarios/profiles"),
        ("population", "scenarios/populations"),
    ] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
        for entry in std::fs::read_dir(&dir).expect("a folder") {
            let path = entry.expect("an entry").path();
            let text = std::fs::read(&path).expect("a file");
            if let Err(e) = decode(kind, &text) {
                panic!("{}: {e}", path.display());
            }
        }
    }
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        source_file: Some(file!()),
        ..ProptestConfig::default()
    }
}

/// Mutated seeds of `kind`, decoded.
fn mutated_seeds_never_panic(kind: &'static str, cases: u32) {
    let all = seeds(kind);
    let strategy = (0..all.len(), prop::collection::vec(mutation(), 1..6));
    proptest::test_runner::TestRunner::new(config(cases))
        .run(&strategy, |(pick, changes)| {
            let input = mutate(all[pick].clone(), &changes);
            let _ = decode(kind, &input);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
}

/// Arbitrary bytes, decoded as `kind`.
fn arbitrary_bytes_never_panic(kind: &'static str, cases: u32) {
    proptest::test_runner::TestRunner::new(config(cases))
        .run(&prop::collection::vec(any::<u8>(), 0..600), |input| {
            let _ = decode(kind, &input);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
}

macro_rules! decoder_properties {
    ($($kind:ident: $cases:expr;)*) => {
        $(
            mod $kind {
                #[test]
                fn mutated_seeds_never_panic() {
                    super::mutated_seeds_never_panic(stringify!($kind), $cases);
                }

                #[test]
                fn arbitrary_bytes_never_panic() {
                    super::arbitrary_bytes_never_panic(stringify!($kind), $cases);
                }
            }
        )*

        #[test]
        fn every_kind_has_its_properties() {
            let tested = [$(stringify!($kind)),*];
            assert_eq!(tested.as_slice(), KINDS);
        }
    };
}

decoder_properties! {
    client_request: 2000;
    session_frame: 2000;
    pool_frame: 2000;
    scenario: 500;
    population: 500;
    topology: 500;
    profile: 500;
    results_folder: 200;
}
