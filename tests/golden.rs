//! Golden-file tests: every directory `tests/<tool>/<case>/` is one case,
//! run against its own SoftHSM2 token directory.
//!
//! A case holds `args` (one argv element per line, for the tool named by
//! the parent directory) or `pipeline` (a bash script), and optionally
//! `stdin`, `env` (KEY=VALUE lines) and `token` (a bash recipe run first to
//! provision the case's token). Expected results are `stdout`, `stderr`
//! and `status` (missing means empty, empty, 0). In expectations, `[..]`
//! matches any text within a line, a line `...` matches any number of
//! lines, and the case's temporary directory reads `[TMP]`.
//!
//! `GOLDEN=overwrite cargo test --test golden` rewrites the expectations;
//! review them with `git diff`. Arguments filter cases by substring.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const SOFTHSM_PATHS: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

struct Case {
    tool: String,
    name: String,
    dir: PathBuf,
}

fn main() {
    let overwrite = match std::env::var("GOLDEN").as_deref() {
        Err(_) => false,
        Ok("overwrite") => true,
        Ok(other) => {
            eprintln!("GOLDEN={other:?}: the only value is `overwrite`");
            std::process::exit(2);
        }
    };
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let cases = discover(&root, &filters);
    // Token cases never skip: a missing SoftHSM2 fails the run loudly.
    let module = SOFTHSM_PATHS.iter().find(|p| Path::new(p).exists()).unwrap_or_else(|| {
        eprintln!("golden: SoftHSM2 is not installed (run `make check`, which installs it)");
        std::process::exit(1);
    });
    let faulty = faulty_module().unwrap_or_else(|e| {
        eprintln!("golden: {e}");
        std::process::exit(1);
    });
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                let label = format!("{}/{}", case.tool, case.name);
                match run_case(case, module, &faulty, overwrite) {
                    Ok(()) => println!("golden {label} ... ok"),
                    Err(report) => {
                        println!("golden {label} ... FAILED");
                        failures.lock().expect("lock").push((label, report));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().expect("lock");
    for (label, report) in &failures {
        println!("\n---- {label} ----\n{report}");
    }
    println!("\ngolden: {} passed, {} failed", cases.len() - failures.len(), failures.len());
    std::process::exit(if failures.is_empty() { 0 } else { 1 });
}

fn discover(root: &Path, filters: &[String]) -> Vec<Case> {
    let mut cases = Vec::new();
    for tool in sorted_dirs(root) {
        let tool_name = file_name(&tool);
        if tool_name == "fixtures" {
            continue;
        }
        for dir in sorted_dirs(&tool) {
            if !dir.join("args").exists() && !dir.join("pipeline").exists() {
                continue;
            }
            let case = Case { tool: tool_name.clone(), name: file_name(&dir), dir };
            let label = format!("{}/{}", case.tool, case.name);
            if filters.is_empty() || filters.iter().any(|f| label.contains(f.as_str())) {
                cases.push(case);
            }
        }
    }
    cases
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// The fault-injecting module (`tests/faulty-module`): `$CARDCA_FAULTY_MODULE`
/// when `make check` built it, else built here, beside the tools, with the
/// same profile. Cases load it as `$FAULTY_MODULE`; it wraps `$MODULE`.
fn faulty_module() -> Result<String, String> {
    if let Ok(path) = std::env::var("CARDCA_FAULTY_MODULE") {
        return Ok(path);
    }
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_card-ls")).parent().expect("bin dir");
    let profile = match file_name(bin_dir).as_str() {
        "debug" => "dev".to_string(),
        other => other.to_string(),
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--locked", "-p", "cardca-faulty-module", "--profile", &profile])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .map_err(|e| format!("building tests/faulty-module: {e}"))?;
    if !status.success() {
        return Err(format!("building tests/faulty-module failed ({status})"));
    }
    Ok(bin_dir.join("libcardca_faulty_module.so").display().to_string())
}

fn run_case(case: &Case, module: &str, faulty: &str, overwrite: bool) -> Result<(), String> {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("golden").join(&case.tool).join(&case.name);
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("tokens")).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    let conf = tmp.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tmp.join("tokens").display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_card-ls")).parent().expect("bin dir").to_path_buf();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), format!("{}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", bin_dir.display())),
        ("HOME".into(), tmp.display().to_string()),
        ("TMPDIR".into(), tmp.display().to_string()),
        ("LC_ALL".into(), "C".into()),
        ("TZ".into(), "UTC".into()),
        ("CARDCA_NOW".into(), "2026-01-01T00:00:00Z".into()),
        ("SOFTHSM2_CONF".into(), conf.display().to_string()),
        ("CARDCA_MODULE".into(), module.into()),
        ("MODULE".into(), module.into()),
        ("FAULTY_MODULE".into(), faulty.into()),
        ("FAULTY_REAL_MODULE".into(), module.into()),
        ("FIXTURES".into(), fixtures.display().to_string()),
        ("CASE".into(), case.dir.display().to_string()),
    ];
    // Outside tools installed in the project's venv (pkilint), which
    // `make check` creates.
    let venv =
        std::env::var("CARDCA_VENV").unwrap_or_else(|_| format!("{}/.venv", env!("CARGO_MANIFEST_DIR")));
    env.push(("CARDCA_VENV".into(), venv));
    if let Some(extra) = read(&case.dir.join("env")) {
        for line in extra.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
            let (k, v) = line.split_once('=').ok_or_else(|| format!("env: bad line {line:?}"))?;
            env.push((k.to_string(), v.replace("[TMP]", &tmp.display().to_string())));
        }
    }
    let lib = fixtures.join("lib.sh");
    if case.dir.join("token").exists() {
        let out = Command::new("bash")
            .arg("-euo")
            .arg("pipefail")
            .arg("-c")
            .arg(format!("source '{}'; source '{}'", lib.display(), case.dir.join("token").display()))
            .current_dir(&tmp)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running the token recipe: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "token recipe failed ({})\nstdout:\n{}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    // setsid: no controlling terminal, as in CI, so a prompt can never hang
    // a test and "no PIN source and no tty" is what the tools see.
    let mut cmd = Command::new("setsid");
    cmd.arg("-w");
    if let Some(args) = read(&case.dir.join("args")) {
        cmd.arg(bin_dir.join(&case.tool));
        cmd.args(args.lines());
    } else {
        cmd.arg("bash").arg("-euo").arg("pipefail").arg("-c");
        cmd.arg(format!("source '{}'; source '{}'", lib.display(), case.dir.join("pipeline").display()));
    }
    let stdin = std::fs::read(case.dir.join("stdin")).ok();
    let mut child = cmd
        .current_dir(&tmp)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawning: {e}"))?;
    // stdin from a thread, so a tool that writes before reading all its
    // input cannot deadlock against us.
    let writer = stdin.map(|data| {
        let mut pipe = child.stdin.take().expect("stdin");
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let out = child.wait_with_output().map_err(|e| format!("waiting: {e}"))?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    let tmp_text = tmp.display().to_string();
    let fixtures_text = fixtures.display().to_string();
    let redactions = token_redactions(&tmp, &env);
    let norm = |b: &[u8]| {
        let mut text =
            String::from_utf8_lossy(b).replace(&tmp_text, "[TMP]").replace(&fixtures_text, "[FIXTURES]");
        for (from, to) in &redactions {
            text = text.replace(from.as_str(), to);
        }
        text
    };
    let actual = [
        ("stdout", norm(&out.stdout)),
        ("stderr", norm(&out.stderr)),
        ("status", format!("{}\n", out.status.code().unwrap_or(-1))),
    ];
    let mut report = String::new();
    for (name, got) in &actual {
        let path = case.dir.join(name);
        let default = if *name == "status" { "0\n" } else { "" };
        if overwrite {
            if got == default {
                let _ = std::fs::remove_file(&path);
            } else {
                std::fs::write(&path, got).map_err(|e| e.to_string())?;
            }
            continue;
        }
        let want = read(&path).unwrap_or_else(|| default.to_string());
        if !matches(&want, got) {
            report.push_str(&format!("{name} differs\n--- expected\n{want}--- actual\n{got}---\n"));
        }
    }
    if report.is_empty() {
        Ok(())
    } else {
        Err(report)
    }
}

/// SoftHSM2 gives each token a random serial, and a slot id derived from
/// it: both are redacted to `[SERIAL]` and `[SLOT]` so expectations stay
/// stable. The ids are read from `softhsm2-util --show-slots` afterwards.
fn token_redactions(tmp: &Path, env: &[(String, String)]) -> Vec<(String, &'static str)> {
    let Ok(out) = Command::new("softhsm2-util")
        .arg("--show-slots")
        .current_dir(tmp)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
    else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(serial) = line.strip_prefix("Serial number:").map(str::trim) {
            if serial.len() == 16 {
                out.push((serial.to_string(), "[SERIAL]"));
            }
        }
        if let Some(slot) = line.strip_prefix("Slot ").and_then(|s| s.parse::<u64>().ok()) {
            // Uninitialised tokens sit in small, stable slots.
            if slot > 0xffff {
                out.push((format!("{slot:#x}"), "[SLOT]"));
                out.push((slot.to_string(), "[SLOT]"));
            }
        }
    }
    out
}

/// Line-wise match with `[..]` inside lines and `...` across lines.
fn matches(want: &str, got: &str) -> bool {
    let w: Vec<&str> = want.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    lines_match(&w, &g)
}

fn lines_match(want: &[&str], got: &[&str]) -> bool {
    match want.split_first() {
        None => got.is_empty(),
        Some((&"...", rest)) => (0..=got.len()).any(|skip| lines_match(rest, &got[skip..])),
        Some((w, rest)) => {
            got.split_first().is_some_and(|(g, grest)| line_matches(w, g) && lines_match(rest, grest))
        }
    }
}

fn line_matches(want: &str, got: &str) -> bool {
    let parts: Vec<&str> = want.split("[..]").collect();
    if parts.len() == 1 {
        return want == got;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !got.starts_with(first) || !got[first.len()..].ends_with(last) || got.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &got[first.len()..got.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}
