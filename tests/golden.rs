//! Golden-file tests: every directory `tests/<tool>/<case>/` is one case,
//! run against its own SoftHSM2 token directory.
//!
//! A case holds `args` (one argv element per line, for the tool named by
//! the parent directory) or `pipeline` (a bash script), and optionally
//! `stdin`, `env` (KEY=VALUE lines) and `token` (a bash recipe run first to
//! provision the case's token). Expected results are `stdout`, `stderr`
//! and `status` (missing means empty, empty, 0).
//!
//! Expectations are compared byte for byte: a missing or extra final
//! newline, a `\r` or any other byte differs. The only wildcards are the
//! ones written in an expectation: `[..]` matches any text within a line,
//! a line `...` matches any number of lines. The case's temporary
//! directory reads `[TMP]`, the fixtures `[FIXTURES]`, and SoftHSM2's
//! random token serials and slot ids `[SERIAL]` and `[SLOT]`. A failure
//! shows a line diff (`-` expected, `+` actual) with what is not printable
//! escaped (`\r`, `\u{1b}`, `\xff`).
//!
//! Each case has 60 s, token recipe included; a `timeout` file (whole
//! seconds) gives a slower case more. A case still running then fails with
//! "timed out after N s", and the run goes on. (60, not 30: on a loaded
//! two-core machine ordinary cases took up to 25 s; the stream and kill
//! cases, which took up to 300 s there, have their own `timeout`.) Cases and recipes run under
//! `setsid -w`: spawned by us, setsid is not a process group leader, so it
//! does not fork but calls setsid(2) and execs the command, whose pid is
//! then its session's and process group's id. A timeout kills that whole
//! group (`kill -KILL -- -PID`), background processes of a pipeline too.
//!
//! `GOLDEN=overwrite cargo test --test golden` rewrites the expectations
//! that do not match (so wildcards in matching files survive); review them
//! with `git diff`. Arguments filter cases by substring.
//!
//! `tests/harness/` tests the harness itself: a case there with a `fails`
//! file passes only if it fails with a report that contains that file's
//! text (a trailing newline, a `\r`, a binary difference, a hang). Each of
//! them without a `timeout` is also run with `GOLDEN=overwrite` on a copy,
//! which must then pass, with any expectation that matched left untouched.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

const SOFTHSM_PATHS: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// Seconds a case may take unless its `timeout` file says otherwise.
const DEFAULT_TIMEOUT_S: u64 = 60;

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
                let start = Instant::now();
                let result = run_case(case, module, &faulty, overwrite);
                let secs = start.elapsed().as_secs_f64();
                match result {
                    Ok(()) => println!("golden {label} ... ok ({secs:.1} s)"),
                    Err(report) => {
                        println!("golden {label} ... FAILED ({secs:.1} s)");
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

/// A case of `tests/harness/` with a `fails` file must fail, and say that
/// file's text; any other case must pass.
fn run_case(case: &Case, module: &str, faulty: &str, overwrite: bool) -> Result<(), String> {
    if case.tool == "harness" && !case.dir.join("timeout").exists() {
        overwrite_self_test(case, module, faulty)?;
    }
    let Some(want) = read(&case.dir.join("fails")) else {
        return check_case(case, module, faulty, overwrite);
    };
    match check_case(case, module, faulty, false) {
        Ok(()) => Err(format!("passed, but a harness self-test must fail with:\n{want}")),
        Err(report) if report.contains(&want) => Ok(()),
        Err(report) => Err(format!("failed, but not with:\n{want}--- the report was:\n{report}")),
    }
}

/// `GOLDEN=overwrite` on a copy of a harness case must leave the copy
/// passing, and must not touch an expectation that matched (its wildcards
/// would be lost).
fn overwrite_self_test(case: &Case, module: &str, faulty: &str) -> Result<(), String> {
    let name = format!("{}.overwritten", case.name);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("golden-overwrite").join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for file in std::fs::read_dir(&case.dir).map_err(|e| e.to_string())? {
        let from = file.map_err(|e| e.to_string())?.path();
        std::fs::copy(&from, dir.join(file_name(&from)))
            .map_err(|e| format!("copying {}: {e}", from.display()))?;
    }
    let copy = Case { tool: case.tool.clone(), name, dir };
    let before = check_case(&copy, module, faulty, false);
    check_case(&copy, module, faulty, true).map_err(|e| format!("GOLDEN=overwrite failed: {e}"))?;
    check_case(&copy, module, faulty, false)
        .map_err(|e| format!("still fails after GOLDEN=overwrite:\n{e}"))?;
    for expectation in ["stdout", "stderr", "status"] {
        let (was, is) =
            (std::fs::read(case.dir.join(expectation)), std::fs::read(copy.dir.join(expectation)));
        if before.is_ok() && was.ok() != is.ok() {
            return Err(format!("GOLDEN=overwrite rewrote {expectation}, which matched"));
        }
    }
    Ok(())
}

fn check_case(case: &Case, module: &str, faulty: &str, overwrite: bool) -> Result<(), String> {
    let limit = match read(&case.dir.join("timeout")) {
        None => DEFAULT_TIMEOUT_S,
        Some(text) => text.trim().parse().map_err(|_| format!("timeout: {text:?} is not whole seconds"))?,
    };
    let deadline = Timer { end: Instant::now() + Duration::from_secs(limit), limit };
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
        // The issuing directory (examples/ca), which cases copy.
        ("EXAMPLES".into(), Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").display().to_string()),
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
    // setsid: no controlling terminal, as in CI, so a prompt can never hang
    // a test and "no PIN source and no tty" is what the tools see; and one
    // process group to kill on a timeout (see the header).
    let setsid = || {
        let mut cmd = Command::new("setsid");
        cmd.arg("-w").current_dir(&tmp).env_clear().envs(env.iter().map(|(k, v)| (k, v)));
        cmd
    };
    let source =
        |script: &str| format!("source '{}'; source '{}'", lib.display(), case.dir.join(script).display());
    if case.dir.join("token").exists() {
        let mut cmd = setsid();
        cmd.args(["bash", "-euo", "pipefail", "-c", &source("token")]);
        let out = run_timed(&mut cmd, None, &deadline).map_err(|e| format!("token recipe: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "token recipe failed ({})\nstdout:\n{}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let mut cmd = setsid();
    if let Some(args) = read(&case.dir.join("args")) {
        cmd.arg(bin_dir.join(&case.tool));
        cmd.args(args.lines());
    } else {
        cmd.args(["bash", "-euo", "pipefail", "-c", &source("pipeline")]);
    }
    let stdin = std::fs::read(case.dir.join("stdin")).ok();
    let out = run_timed(&mut cmd, stdin, &deadline)?;
    let mut redactions =
        vec![(tmp.display().to_string(), "[TMP]"), (fixtures.display().to_string(), "[FIXTURES]")];
    redactions.extend(token_redactions(&tmp, &env)?);
    let norm = |b: &[u8]| {
        redactions.iter().fold(b.to_vec(), |text, (from, to)| replace(&text, from.as_bytes(), to.as_bytes()))
    };
    let actual = [
        ("stdout", norm(&out.stdout)),
        ("stderr", norm(&out.stderr)),
        ("status", format!("{}\n", out.status.code().unwrap_or(-1)).into_bytes()),
    ];
    let mut report = String::new();
    for (name, got) in &actual {
        let path = case.dir.join(name);
        let default: &[u8] = if *name == "status" { b"0\n" } else { b"" };
        let want = std::fs::read(&path).unwrap_or_else(|_| default.to_vec());
        if matches(&want, got) {
            continue;
        }
        if !overwrite {
            report.push_str(&format!("{name} differs (- expected, + actual)\n{}", diff(&want, got)));
        } else if got == default {
            let _ = std::fs::remove_file(&path);
        } else {
            std::fs::write(&path, got).map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
    }
    if report.is_empty() {
        Ok(())
    } else {
        Err(report)
    }
}

/// A case's deadline, and its length for the message.
struct Timer {
    end: Instant,
    limit: u64,
}

/// Runs a `setsid -w` command to its exit and the end of its output, or
/// until the deadline: then its process group is killed and the case fails.
fn run_timed(cmd: &mut Command, stdin: Option<Vec<u8>>, deadline: &Timer) -> Result<Output, String> {
    let mut child = cmd
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawning: {e}"))?;
    // stdin from a thread, so a tool that writes before reading all its
    // input cannot deadlock against us. Not joined: a case that never reads
    // its input must still time out.
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    // Done when the command has exited and every process that shares its
    // output (a pipeline's background jobs) has closed it.
    let mut status = None;
    let (mut out, mut err) = (None, None);
    while status.is_none() || out.is_none() || err.is_none() {
        if Instant::now() >= deadline.end {
            return Err(timed_out(&mut child, deadline.limit, (out, stdout), (err, stderr)));
        }
        if status.is_none() {
            status = child.try_wait().map_err(|e| format!("waiting: {e}"))?;
        }
        out = out.or_else(|| stdout.try_recv().ok());
        err = err.or_else(|| stderr.try_recv().ok());
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Output { status: status.expect("exited"), stdout: out.expect("read"), stderr: err.expect("read") })
}

/// A pipe read to its end on a thread; the bytes arrive on the channel.
fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    rx
}

type Pending = (Option<Vec<u8>>, mpsc::Receiver<Vec<u8>>);

/// Kills the case's process group, then reports what it had written. The
/// group's id outlives an exited leader while members remain, so this also
/// reaches background processes left holding the output.
fn timed_out(child: &mut std::process::Child, limit: u64, out: Pending, err: Pending) -> String {
    let group = format!("-{}", child.id());
    let killed = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
    let _ = child.kill();
    let _ = child.wait();
    let mut report = format!("timed out after {limit} s\n");
    if !killed.is_ok_and(|s| s.success()) {
        report.push_str(&format!("(kill -KILL -- {group} failed: not a process group?)\n"));
    }
    for (name, (got, rx)) in [("stdout", out), ("stderr", err)] {
        match got.or_else(|| rx.recv_timeout(Duration::from_secs(5)).ok()) {
            Some(bytes) => {
                // The end shows where it hung; a stream's start is noise.
                let all = lines(&bytes);
                let skip = all.len().saturating_sub(20);
                report.push_str(&format!("{name} so far:\n"));
                if skip > 0 {
                    report.push_str(&format!("@@ {skip} lines before @@\n"));
                }
                report.extend(all[skip..].iter().map(|l| show("  ", *l)));
            }
            None => report.push_str(&format!("{name} stayed open after the kill\n")),
        }
    }
    report
}

/// SoftHSM2 gives each token a random serial, and a slot id derived from
/// it: both are redacted to `[SERIAL]` and `[SLOT]` so expectations stay
/// stable. The ids are read from `softhsm2-util --show-slots` afterwards;
/// if that fails, the case fails, rather than compare unredacted output.
fn token_redactions(tmp: &Path, env: &[(String, String)]) -> Result<Vec<(String, &'static str)>, String> {
    let out = Command::new("softhsm2-util")
        .arg("--show-slots")
        .current_dir(tmp)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .map_err(|e| format!("softhsm2-util --show-slots (to redact token ids): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "softhsm2-util --show-slots (to redact token ids) failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
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
    Ok(out)
}

fn replace(text: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = find(rest, from) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(to);
        rest = &rest[i + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A line: its bytes without the `\n`, and whether the `\n` was there
/// (only the last line of a text can lack it).
type Line<'a> = (&'a [u8], bool);

fn lines(text: &[u8]) -> Vec<Line<'_>> {
    text.split_inclusive(|&b| b == b'\n')
        .map(|l| match l.strip_suffix(b"\n") {
            Some(l) => (l, true),
            None => (l, false),
        })
        .collect()
}

/// Byte-exact, but for the `[..]` and `...` wildcards `want` spells out.
fn matches(want: &[u8], got: &[u8]) -> bool {
    lines_match(&lines(want), &lines(got))
}

fn lines_match(want: &[Line], got: &[Line]) -> bool {
    match want.split_first() {
        None => got.is_empty(),
        Some(((b"...", _), rest)) => (0..=got.len()).any(|skip| lines_match(rest, &got[skip..])),
        Some((w, rest)) => {
            got.split_first().is_some_and(|(g, grest)| line_matches(*w, *g) && lines_match(rest, grest))
        }
    }
}

fn line_matches((want, want_nl): Line, (got, got_nl): Line) -> bool {
    if want_nl != got_nl {
        return false;
    }
    let mut parts = Vec::new();
    let mut rest = want;
    while let Some(i) = find(rest, b"[..]") {
        parts.push(&rest[..i]);
        rest = &rest[i + 4..];
    }
    parts.push(rest);
    let [first, middle @ .., last] = parts.as_slice() else { return want == got };
    if got.len() < first.len() + last.len() || !got.starts_with(first) || !got.ends_with(last) {
        return false;
    }
    let mut rest = &got[first.len()..got.len() - last.len()];
    for part in middle {
        match find(rest, part) {
            Some(i) => rest = &rest[i + part.len()..],
            None if part.is_empty() => {}
            None => return false,
        }
    }
    true
}

/// A line diff of an expectation against the output (longest common
/// subsequence, with the wildcards counting as equal).
fn diff(want: &[u8], got: &[u8]) -> String {
    let (w, g) = (lines(want), lines(got));
    // Equal ends are shown as they are; the table is only for the middle,
    // and a middle too big for it is shown whole, expected then actual.
    let same = |(a, b): (&Line, &Line)| line_matches(*a, *b);
    let head = w.iter().zip(&g).take_while(|p| same(*p)).count();
    let tail = w[head..].iter().rev().zip(g[head..].iter().rev()).take_while(|p| same(*p)).count();
    let (w_mid, g_mid) = (&w[head..w.len() - tail], &g[head..g.len() - tail]);
    let mut out = context(&g[..head], true);
    if w_mid.len().saturating_mul(g_mid.len()) > 4_000_000 {
        out.extend(w_mid.iter().map(|l| show("- ", *l)));
        out.extend(g_mid.iter().map(|l| show("+ ", *l)));
    } else {
        out.push_str(&lcs_diff(w_mid, g_mid));
    }
    out.push_str(&context(&g[g.len() - tail..], false));
    out
}

/// Equal lines around a difference: the three nearest, and a count of
/// the others.
fn context(equal: &[Line], before: bool) -> String {
    let keep = equal.len().min(3);
    let note = if equal.len() > keep {
        format!("@@ {} equal lines @@\n", equal.len() - keep)
    } else {
        String::new()
    };
    let show_all = |ls: &[Line]| ls.iter().map(|l| show("  ", *l)).collect::<String>();
    if before {
        note + &show_all(&equal[equal.len() - keep..])
    } else {
        show_all(&equal[..keep]) + &note
    }
}

fn lcs_diff(w: &[Line], g: &[Line]) -> String {
    let (n, m) = (w.len(), g.len());
    let mut common = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if line_matches(w[i], g[j]) {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && line_matches(w[i], g[j]) {
            out.push_str(&show("  ", g[j]));
            (i, j) = (i + 1, j + 1);
        } else if i < n && (j == m || common[i + 1][j] >= common[i][j + 1]) {
            out.push_str(&show("- ", w[i]));
            i += 1;
        } else {
            out.push_str(&show("+ ", g[j]));
            j += 1;
        }
    }
    out
}

/// One line for a report: control characters and bytes that are not
/// UTF-8 escaped, and a missing final newline said, as diff(1) does.
fn show(prefix: &str, (text, newline): Line) -> String {
    let mut out = prefix.to_string();
    for chunk in text.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.extend(c.escape_default()),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('\n');
    if !newline {
        out.push_str("\\ No newline at end\n");
    }
    out
}
