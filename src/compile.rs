//! `-compile MAIN`: the offline build. An action (source file, zip or tar.gz) read on stdin is
//! prepared exactly as `/init` would prepare it, dependencies installed with the image's own
//! tools, and written to stdout as a zip whose root `exec` starts it. Sent to `/init`, that
//! zip runs as a prebuilt executable: no build step, no download at cold start.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::error::StartupError;
use crate::language::Language;
use crate::package;
use crate::plan::{self, Folders, Plan};
use crate::settings::Settings;

/// Reads the action on stdin and writes the zip on stdout.
pub fn run(settings: &Settings, main: &str) -> Result<(), StartupError> {
    build(settings, main).map_err(StartupError::Compile)
}

fn build(settings: &Settings, main: &str) -> Result<(), String> {
    // The zip's dependencies are installed below, its own way; not as `/init` would.
    let settings = &Settings {
        init_install: false,
        ..settings.clone()
    };
    let mut input = Vec::new();
    io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| format!("cannot read the action on stdin: {e}"))?;
    let env = &settings.compile_env;
    let work = tempfile::tempdir().map_err(|e| format!("no temporary folder: {e}"))?;
    let folders = Folders::in_attempt(&work.path().join("action"), settings);
    folders.create().map_err(|e| e.to_string())?;
    let name = plan::source_name(settings);
    let layout = package::unpack(&input, &folders.code, name, &settings.limits)
        .map_err(|e| e.to_string())?;
    let plan = plan::plan(settings, &folders, &layout, main, env).map_err(|e| e.message())?;
    let root = match &plan {
        Plan::Executable(exec) => exec.parent().unwrap_or(&folders.code).to_path_buf(),
        Plan::Launcher { file } => {
            // Our stdout carries the zip: the tools' chatter goes to stderr.
            let mut to_stderr = |bytes: &[u8]| {
                let _ = io::stderr().write_all(bytes);
            };
            let language = settings.runtime;
            crate::install::install(
                language,
                language.install.compile,
                &settings.interpreter,
                &folders.code,
                env,
                Duration::from_secs(24 * 3600),
                &mut to_stderr,
            )
            .map_err(|e| e.to_string())?;
            write_exec(settings.runtime, &folders.code, main, file.as_deref())
                .map_err(|e| format!("cannot write exec: {e}"))?;
            folders.code.clone()
        }
    };
    let zip = zip_folder(&root).map_err(|e| format!("cannot write the zip: {e}"))?;
    let mut out = io::stdout().lock();
    out.write_all(&zip)
        .and_then(|_| out.flush())
        .map_err(|e| format!("cannot write the zip to stdout: {e}"))
}

/// Where the launcher goes inside a compiled action: out of the way of the action's files.
const LAUNCHER_FOLDER: &str = ".actionloop";

/// Quotes a word for `sh`.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The `exec` of a compiled built-in action: the launcher in standalone mode.
fn write_exec(runtime: &Language, folder: &Path, main: &str, file: Option<&str>) -> io::Result<()> {
    let launcher = runtime.install_launcher(&folder.join(LAUNCHER_FOLDER))?;
    let launcher = launcher
        .strip_prefix(folder)
        .unwrap_or(&launcher)
        .display()
        .to_string();
    let mut args = vec![quote(&launcher), quote(main)];
    args.extend(file.map(quote));
    let script = format!(
        "#!/bin/sh\n\
         # Made by `actionloop -compile`: runs this {} action through its ActionLoop launcher.\n\
         cd \"$(dirname \"$0\")\" || exit 1\n\
         exec \"${{OW_INTERPRETER:-{}}}\" {}\n",
        runtime.name,
        runtime.interpreter,
        args.join(" ")
    );
    let exec = folder.join("exec");
    fs::write(&exec, script)?;
    fs::set_permissions(&exec, fs::Permissions::from_mode(0o755))
}

/// Zips a folder, keeping modes and symlinks, in a stable order.
pub(crate) fn zip_folder(root: &Path) -> io::Result<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    let mut pending = vec![root.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let mut entries: Vec<_> = fs::read_dir(&folder)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let name = path
                .strip_prefix(root)
                .map_err(io::Error::other)?
                .to_string_lossy()
                .into_owned();
            let meta = fs::symlink_metadata(&path)?;
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .unix_permissions(meta.permissions().mode() & 0o777);
            if meta.is_symlink() {
                let target = fs::read_link(&path)?;
                writer
                    .add_symlink(name, target.to_string_lossy(), options)
                    .map_err(io::Error::other)?;
            } else if meta.is_dir() {
                writer
                    .add_directory(format!("{name}/"), options)
                    .map_err(io::Error::other)?;
                pending.push(path);
            } else {
                writer.start_file(name, options).map_err(io::Error::other)?;
                io::copy(&mut fs::File::open(&path)?, &mut writer)?;
            }
        }
    }
    Ok(writer.finish().map_err(io::Error::other)?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::Layout;

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(quote("main"), "'main'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn a_zipped_folder_unpacks_to_the_same_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/a.txt"), "a").unwrap();
        fs::write(dir.path().join("exec"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(dir.path().join("exec"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("sub/a.txt", dir.path().join("link")).unwrap();
        let zip = zip_folder(dir.path()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let layout = package::unpack(&zip, out.path(), "x", &Default::default()).unwrap();
        assert_eq!(layout, Layout::Archive);
        assert_eq!(
            fs::read_to_string(out.path().join("sub/a.txt")).unwrap(),
            "a"
        );
        assert_eq!(
            fs::read_link(out.path().join("link")).unwrap(),
            Path::new("sub/a.txt")
        );
        let mode = fs::metadata(out.path().join("exec"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }
}
