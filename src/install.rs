//! Installing what an action declares but does not bundle (`requirements.txt` without
//! `virtualenv/`, a `package.json` with dependencies and no `node_modules/`, `composer.json`
//! without `vendor/`), with the image's own tools: at `/init` (unless
//! `OW_ENABLE_INIT_INSTALL` is off) and for `-compile`. The steps are the language's
//! (see [`crate::language::Install`]).
//!
//! The installers' output is the action's business: at `/init` it goes to the proxy's
//! stderr, inside the attempt's logs, as it comes. An install is stopped at a time limit, so
//! that `/init` stays within the invoker's timeout, and a failure says which tool failed and
//! the last thing it said.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::child::reaper;
use crate::language::{Language, Program, Step};

/// Why an install did not finish.
#[derive(Debug)]
pub enum InstallError {
    /// The tool is not in this image.
    Missing(String),
    /// The tool failed: the command, how it ended, its last line.
    Failed(String),
    /// It ran past the limit and was stopped.
    TooSlow(String, Duration),
}

/// Where installers' output goes.
pub type Sink<'a> = &'a mut dyn FnMut(&[u8]);

/// Installs the dependencies of the action in `folder` when it declares some it does not
/// bundle; `false` when there was nothing to do. Blocking.
pub fn install(
    language: &Language,
    steps: &[Step],
    interpreter: &Path,
    folder: &Path,
    env: &[(String, String)],
    limit: Duration,
    out: Sink,
) -> Result<bool, InstallError> {
    if !(language.install.needed)(folder) {
        return Ok(false);
    }
    let deadline = Instant::now() + limit;
    for step in steps {
        run_step(step, interpreter, folder, env, deadline, limit, out)?;
    }
    Ok(true)
}

fn run_step(
    step: &Step,
    interpreter: &Path,
    folder: &Path,
    env: &[(String, String)],
    deadline: Instant,
    limit: Duration,
    out: Sink,
) -> Result<(), InstallError> {
    let program = match step.program {
        Program::Interpreter => interpreter.to_path_buf(),
        Program::Named(name) => name.into(),
        Program::InFolder(path) => folder.join(path),
    };
    let words = format!("{} {}", step.program.name(), step.args.join(" "));
    // One pipe for both streams, so that the installer's lines keep their order.
    let (reader, writer) =
        std::io::pipe().map_err(|e| InstallError::Failed(format!("{words}: {e}")))?;
    let writer_too = writer
        .try_clone()
        .map_err(|e| InstallError::Failed(format!("{words}: {e}")))?;
    let mut command = Command::new(&program);
    command
        .args(step.args)
        .current_dir(folder)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer_too)
        .process_group(0);
    let mut child = reaper::spawn(|| command.spawn(), std::process::Child::id).map_err(|e| {
        InstallError::Missing(format!(
            "installing the dependencies needs {}, which cannot run here: {e}",
            step.program.name()
        ))
    })?;
    // The command holds the write ends; once it is dropped only the installer's remain.
    drop(command);
    let pid = child.id();
    let copier = std::thread::spawn(move || copy_lines(reader));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                reaper::kill_tree(pid);
                let _ = child.wait();
                break Err(InstallError::TooSlow(words.clone(), limit));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(InstallError::Failed(format!("{words}: {e}"))),
        }
    };
    reaper::release(pid);
    // Nothing the installer started may keep the pipe open (or go on running).
    reaper::kill_tree(pid);
    // What the installer printed, in order; the last line names what went wrong.
    let (printed, last) = copier.join().unwrap_or_default();
    out(&printed);
    let status = status?;
    if status.success() {
        return Ok(());
    }
    if last.contains("No module named pip") {
        return Err(InstallError::Missing(
            "installing the dependencies needs pip, which this image does not have".into(),
        ));
    }
    Err(InstallError::Failed(format!("{words} ({status}): {last}")))
}

/// Reads everything from the installers' pipe (bounded: a runaway installer does not fill the
/// proxy's memory); also its last non-empty line.
fn copy_lines(mut reader: std::io::PipeReader) -> (Vec<u8>, String) {
    const KEEP: usize = 1024 * 1024;
    let mut printed = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut dropped = 0usize;
    let mut tail = Vec::new();
    while let Ok(n @ 1..) = reader.read(&mut chunk) {
        if printed.len() + n <= KEEP {
            printed.extend_from_slice(&chunk[..n]);
        } else {
            dropped += n;
        }
        tail.extend_from_slice(&chunk[..n]);
        if tail.len() > 64 * 1024 {
            tail.drain(..tail.len() - 8 * 1024);
        }
    }
    if dropped > 0 {
        printed
            .extend_from_slice(format!("[{dropped} more bytes of installer output]\n").as_bytes());
    }
    let last = String::from_utf8_lossy(&tail)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string();
    (printed, last)
}
