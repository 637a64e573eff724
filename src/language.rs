//! The built-in languages, one table entry each: which interpreter to start, with which
//! embedded launcher, what a single-file action is called on disk, what the interpreter reads
//! while it starts, and how the dependencies an action declares are installed.
//!
//! Adding a language is one constant here, one launcher in `runtimes/<name>/`, and its tests.

use std::io;
use std::path::{Path, PathBuf};

/// One built-in language.
#[derive(Debug)]
pub struct Language {
    /// The name `--runtime` and `OW_RUNTIME` take, and the other names they accept.
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// Found on the proxy's `PATH` unless `OW_INTERPRETER` names another.
    pub interpreter: &'static str,
    /// The launcher, compiled into the binary so that an image needs no extra files.
    pub launcher_name: &'static str,
    pub launcher: &'static str,
    /// The name a plain-text action is saved under.
    pub source_name: &'static str,
    /// Prefixes of the variables the interpreter reads while it starts (`LD_*` for all): an
    /// `/init` that sets one cannot reuse a prewarmed interpreter, it needs one started with it.
    pub read_at_start: &'static [&'static str],
    /// Whether the interpreter gets the proxy's glibc allocator tunables (see `memory`).
    pub tune_malloc: bool,
    /// Whether the launcher keeps the answer channel (fd 3) from the action's code, so that
    /// only its own JSON encoder writes there. PHP cannot close or move a descriptor.
    pub private_answers: bool,
    /// How the dependencies an action declares but does not bundle are installed.
    pub install: Install,
}

/// Installing declared dependencies: when `needed` says so for the action folder, each step
/// runs in it, in order: `compile` for `-compile` (whose zip must run anywhere the language
/// runs), `init` at `/init` (where speed matters and the image is the one that will run it).
#[derive(Debug)]
pub struct Install {
    pub needed: fn(&Path) -> bool,
    pub compile: &'static [Step],
    pub init: &'static [Step],
}

/// One command of an install.
#[derive(Debug)]
pub struct Step {
    pub program: Program,
    pub args: &'static [&'static str],
}

#[derive(Debug, Clone, Copy)]
pub enum Program {
    /// The language's interpreter, as the proxy found it.
    Interpreter,
    /// A tool found on `PATH`.
    Named(&'static str),
    /// A program inside the action folder.
    InFolder(&'static str),
}

impl Program {
    pub fn name(&self) -> &'static str {
        match self {
            Program::Interpreter => "the interpreter",
            Program::Named(name) | Program::InFolder(name) => name,
        }
    }
}

/// Python's name is not `__main__.py`, so that an `if __name__ == "__main__":` block in the
/// action does not run at import. CPython takes large buffers from glibc's malloc, which by
/// default maps and unmaps every block over 128 KiB: a 1 MiB activation then pays hundreds of
/// fresh page faults each time; V8 and the Zend engine manage their large blocks themselves.
pub const PYTHON: Language = Language {
    name: "python",
    aliases: &["python3"],
    interpreter: "python3",
    launcher_name: "launcher.py",
    launcher: include_str!("../runtimes/python/launcher.py"),
    source_name: "main__.py",
    read_at_start: &["PYTHON"],
    tune_malloc: true,
    private_answers: true,
    // At `/init` the packages go where the launcher looks for a bundled virtualenv's, with
    // no virtualenv made around them (which costs seconds, for its own pip).
    install: Install {
        needed: |dir| dir.join("requirements.txt").exists() && !dir.join("virtualenv").exists(),
        compile: &[
            Step {
                program: Program::Interpreter,
                args: &["-m", "venv", "virtualenv"],
            },
            Step {
                program: Program::InFolder("virtualenv/bin/python"),
                args: &[
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "-r",
                    "requirements.txt",
                ],
            },
        ],
        init: &[Step {
            program: Program::Interpreter,
            args: &[
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--target",
                "virtualenv/lib/python3/site-packages",
                "-r",
                "requirements.txt",
            ],
        }],
    },
};

pub const NODEJS: Language = Language {
    name: "nodejs",
    aliases: &["node"],
    interpreter: "node",
    launcher_name: "launcher.js",
    launcher: include_str!("../runtimes/nodejs/launcher.js"),
    source_name: "index.js",
    read_at_start: &["NODE_", "UV_"],
    tune_malloc: false,
    private_answers: true,
    install: Install {
        needed: needs_npm,
        compile: NPM_INSTALL,
        init: NPM_INSTALL,
    },
};

pub const PHP: Language = Language {
    name: "php",
    aliases: &[],
    interpreter: "php",
    launcher_name: "launcher.php",
    launcher: include_str!("../runtimes/php/launcher.php"),
    source_name: "index.php",
    read_at_start: &["PHP_INI_", "PHPRC"],
    tune_malloc: false,
    private_answers: false,
    install: Install {
        needed: |dir| dir.join("composer.json").exists() && !dir.join("vendor").exists(),
        compile: COMPOSER_INSTALL,
        init: COMPOSER_INSTALL,
    },
};

const NPM_INSTALL: &[Step] = &[Step {
    program: Program::Named("npm"),
    args: &[
        "install",
        "--omit=dev",
        "--no-audit",
        "--no-fund",
        "--no-update-notifier",
    ],
}];

const COMPOSER_INSTALL: &[Step] = &[Step {
    program: Program::Named("composer"),
    args: &["install", "--no-dev", "--no-interaction", "--no-progress"],
}];

/// Every built-in language; the first is the default.
pub const ALL: &[&Language] = &[&PYTHON, &NODEJS, &PHP];

impl Language {
    /// The language a name (or alias) stands for, in any case.
    pub fn find(name: &str) -> Option<&'static Language> {
        let name = name.trim().to_ascii_lowercase();
        ALL.iter()
            .copied()
            .find(|l| l.name == name || l.aliases.contains(&name.as_str()))
    }

    /// The names, for help and error texts: `python, nodejs or php`.
    pub fn names() -> String {
        let names: Vec<&str> = ALL.iter().map(|l| l.name).collect();
        match names.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    /// Whether the interpreter reads `var` while it starts.
    pub fn reads_at_start(&self, var: &str) -> bool {
        var.starts_with("LD_") || self.read_at_start.iter().any(|p| var.starts_with(p))
    }

    /// Writes the launcher into `dir` and returns its path.
    pub fn install_launcher(&self, dir: &Path) -> io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(self.launcher_name);
        std::fs::write(&path, self.launcher)?;
        Ok(path)
    }
}

/// A package.json with dependencies and no bundled node_modules.
fn needs_npm(folder: &Path) -> bool {
    if folder.join("node_modules").exists() {
        return false;
    }
    let Ok(text) = std::fs::read(folder.join("package.json")) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            v.get("dependencies")
                .and_then(|d| d.as_object())
                .map(|d| !d.is_empty())
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_found_by_name_or_alias_in_any_case() {
        let name = |n: &str| Language::find(n).map(|l| l.name);
        assert_eq!(name("Python3"), Some("python"));
        assert_eq!(name(" node "), Some("nodejs"));
        assert_eq!(name("php"), Some("php"));
        assert_eq!(name("ruby"), None);
        assert_eq!(Language::names(), "python, nodejs or php");
        assert!(PYTHON.reads_at_start("PYTHONPATH") && PHP.reads_at_start("LD_PRELOAD"));
        assert!(!NODEJS.reads_at_start("PYTHONPATH"));
    }
}
