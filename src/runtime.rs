//! The built-in language runtimes: which interpreter to start, with which embedded launcher,
//! and what a single-file action is called on disk.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Python,
    Nodejs,
    Php,
}

impl Runtime {
    pub fn parse(name: &str) -> Option<Runtime> {
        match name.trim().to_ascii_lowercase().as_str() {
            "python" | "python3" => Some(Runtime::Python),
            "nodejs" | "node" => Some(Runtime::Nodejs),
            "php" => Some(Runtime::Php),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Runtime::Python => "python",
            Runtime::Nodejs => "nodejs",
            Runtime::Php => "php",
        }
    }

    /// The interpreter looked up on PATH unless `OW_INTERPRETER` says otherwise.
    pub fn interpreter(self) -> &'static str {
        match self {
            Runtime::Python => "python3",
            Runtime::Nodejs => "node",
            Runtime::Php => "php",
        }
    }

    /// The launcher's source, compiled into the binary so that images need no extra files.
    pub fn launcher_source(self) -> &'static str {
        match self {
            Runtime::Python => include_str!("../runtimes/python/launcher.py"),
            Runtime::Nodejs => include_str!("../runtimes/nodejs/launcher.js"),
            Runtime::Php => include_str!("../runtimes/php/launcher.php"),
        }
    }

    pub fn launcher_name(self) -> &'static str {
        match self {
            Runtime::Python => "launcher.py",
            Runtime::Nodejs => "launcher.js",
            Runtime::Php => "launcher.php",
        }
    }

    /// The name a plain-text action is saved under. Python's is not `__main__.py`, so that an
    /// `if __name__ == "__main__":` block in the action does not run at import.
    pub fn source_name(self) -> &'static str {
        match self {
            Runtime::Python => "main__.py",
            Runtime::Nodejs => "index.js",
            Runtime::Php => "index.php",
        }
    }

    /// Environment variables the interpreter reads while starting: an `/init` that sets one of
    /// these cannot reuse a prewarmed interpreter, it needs a fresh one started with them.
    pub fn reads_at_start(self, var: &str) -> bool {
        let prefixes: &[&str] = match self {
            Runtime::Python => &["PYTHON"],
            Runtime::Nodejs => &["NODE_", "UV_"],
            Runtime::Php => &["PHP_INI_", "PHPRC"],
        };
        var.starts_with("LD_") || prefixes.iter().any(|p| var.starts_with(p))
    }

    /// Environment for the interpreter itself. CPython takes large buffers from glibc's malloc,
    /// which by default maps and unmaps every block over 128 KiB: a 1 MiB activation then pays
    /// hundreds of fresh page faults each time (about 0.8 ms here). Keeping such blocks in the
    /// heap, and a little freed heap, makes them warm for the next activation.
    pub fn allocator_tunables(self) -> Option<&'static str> {
        match self {
            Runtime::Python => {
                Some("glibc.malloc.mmap_threshold=8388608:glibc.malloc.trim_threshold=16777216")
            }
            // V8 and the Zend engine manage their large blocks themselves.
            Runtime::Nodejs | Runtime::Php => None,
        }
    }

    /// Writes the launcher into `dir` and returns its path.
    pub fn install_launcher(self, dir: &Path) -> io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(self.launcher_name());
        std::fs::write(&path, self.launcher_source())?;
        Ok(path)
    }
}
