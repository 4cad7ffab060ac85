//! Replays the committed fuzz corpus, crashes found included, through the
//! same functions the libFuzzer targets call (`cardca::fuzz`), so every
//! input that once broke a parser stays a regression test on the stable
//! toolchain. No time-based fuzzing here: `make fuzz` does that.
//!
//! `cardca::fuzz` exists only with cardca's `fuzz` feature, so this test
//! requires it (shared/Cargo.toml); `make test` runs it with
//! `--features cardca/fuzz`.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of a directory, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> =
        entries.map(|e| e.expect("reading a corpus directory").path()).filter(|p| p.is_file()).collect();
    out.sort();
    out
}

#[test]
fn every_target_has_a_corpus_and_replays_it() {
    for (name, target) in cardca::fuzz::TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        // An empty corpus would make this test pass vacuously.
        assert!(!corpus.is_empty(), "fuzz/corpus/{name} is missing or empty");
        let artifacts = files(&fuzz_dir().join("artifacts").join(name));
        for path in corpus.iter().chain(&artifacts) {
            let data = std::fs::read(path).expect("reading a corpus file");
            eprintln!("{}", path.display());
            target(&data);
        }
    }
}

#[test]
fn every_fuzz_target_is_a_corpus_target() {
    // fuzz/fuzz_targets/NAME.rs and cardca::fuzz::TARGETS name the same set.
    let mut declared: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        .collect();
    declared.sort();
    let mut known: Vec<String> = cardca::fuzz::TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    known.sort();
    assert_eq!(declared, known);
}
