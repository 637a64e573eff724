//! The official OpenWhisk and OpenServerless runtime images, rebuilt in a temporary folder from
//! their unmodified upstream files (`../shared/reference-runtimes`), with the real binary as
//! their `/bin/proxy`: the proof that `actionloop` is a drop-in for the Go proxy (issue 10).
//!
//! Only what cannot work outside an image is changed: interpreter paths, and absolute paths of
//! the image, which move under the temporary root. Every rewrite must match, so an upstream
//! change that moves one of them fails loudly instead of testing a different layout.

use std::ops::{Deref, DerefMut};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Options, Proxy};

/// The interpreter an image's compile script and launcher are written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    Python,
    Node,
    Php,
}

impl Language {
    /// The text written for this language, so that one test body serves every image.
    pub fn pick<'a>(self, python: &'a str, node: &'a str, php: &'a str) -> &'a str {
        match self {
            Language::Python => python,
            Language::Node => node,
            Language::Php => php,
        }
    }
}

/// An upstream file and where the image's Dockerfile puts it.
pub struct File {
    /// Relative to the image's folder under `reference-runtimes`.
    pub from: &'static str,
    /// Absolute, inside the image.
    pub to: &'static str,
    pub mode: u32,
    /// `(upstream text, replacement)`; `{root}` in a replacement is the image root.
    pub rewrites: &'static [(&'static str, &'static str)],
}

/// What a runtime image holds and how it starts its proxy, as its Dockerfile says.
pub struct Image {
    pub name: &'static str,
    /// Under `reference-runtimes`.
    pub folder: &'static str,
    pub language: Language,
    pub files: &'static [File],
    /// Folders the Dockerfile makes (`RUN mkdir -p`).
    pub folders: &'static [&'static str],
    /// The last `WORKDIR`: the proxy's working directory, where `action/<n>/` goes.
    pub workdir: &'static str,
    /// The image's own `ENV` lines, verbatim; absolute values are image paths.
    pub env: &'static [(&'static str, &'static str)],
    /// The `ENTRYPOINT` words after `/bin/proxy`.
    pub args: &'static [&'static str],
    /// `USER`, when the image does not run as root.
    pub user: Option<&'static str>,
    /// Where the image copies its `php.ini` (PHP's ini folder); `PHPRC` points at it here.
    pub php_ini: Option<&'static str>,
    /// Composer's `vendor` folder, installed from the network in the image; here a stand-in.
    pub composer_vendor: Option<&'static str>,
}

const PYTHON_SHEBANG: (&str, &str) = ("#!/usr/bin/env python3", "#!/usr/bin/python3");
/// Debian's interpreter, where the `virtualenv` module the compile scripts import is a package.
const PYTHON_EXEC: (&str, &str) = ("/usr/local/bin/python", "/usr/bin/python3");
const PHP_RUNNER: (&str, &str) = ("/bin/runner.php", "{root}/bin/runner.php");
const PHP_VENDOR: (&str, &str) = (
    "/phpAction/composer/vendor",
    "{root}/phpAction/composer/vendor",
);

/// The python images' files: the compile script and the launcher it copies.
const PYTHON_FILES: &[File] = &[
    File {
        from: "bin/compile",
        to: "/bin/compile",
        mode: 0o755,
        rewrites: &[PYTHON_SHEBANG, PYTHON_EXEC],
    },
    File {
        from: "lib/launcher.py",
        to: "/lib/launcher.py",
        mode: 0o644,
        rewrites: &[],
    },
];

/// The PHP images' files, which differ only in the mode the Dockerfile gives `runner.php`.
const fn php_files(runner_mode: u32) -> [File; 4] {
    [
        File {
            from: "php.ini",
            to: "/usr/local/etc/php/php.ini",
            mode: 0o644,
            rewrites: &[],
        },
        File {
            from: "composer.json",
            to: "/phpAction/composer/composer.json",
            mode: 0o644,
            rewrites: &[],
        },
        File {
            from: "compile.php",
            to: "/bin/compile.php",
            mode: 0o755,
            rewrites: &[PHP_RUNNER, PHP_VENDOR],
        },
        File {
            from: "runner.php",
            to: "/bin/runner.php",
            mode: runner_mode,
            rewrites: &[],
        },
    ]
}

pub const OS_PYTHON: Image = Image {
    name: "OpenServerless python v3.12",
    folder: "openserverless-runtimes/python/v3.12",
    language: Language::Python,
    files: PYTHON_FILES,
    folders: &["/action"],
    workdir: "/action",
    env: &[
        (
            "OW_EXECUTION_ENV",
            "apacheopenserverless/runtime-python-v3.12.2",
        ),
        ("OW_LOG_INIT_ERROR", "1"),
        ("OW_WAIT_FOR_ACK", "1"),
        ("OW_COMPILER", "/bin/compile"),
        ("HOME", "/tmp"),
    ],
    args: &[],
    user: Some("nobody"),
    php_ini: None,
    composer_vendor: None,
};

pub const OS_NODEJS: Image = Image {
    name: "OpenServerless nodejs v21",
    folder: "openserverless-runtimes/nodejs/v21",
    language: Language::Node,
    files: &[
        File {
            from: "bin/compile",
            to: "/bin/compile",
            mode: 0o755,
            rewrites: &[PYTHON_SHEBANG],
        },
        File {
            from: "lib/launcher.js",
            to: "/lib/launcher.js",
            mode: 0o644,
            rewrites: &[],
        },
        File {
            from: "package.json",
            to: "/package.json",
            mode: 0o644,
            rewrites: &[],
        },
    ],
    folders: &["/app/action"],
    workdir: "/app",
    env: &[
        ("OW_EXECUTION_ENV", "apacheopenserverless/nodejs-21.6.2"),
        ("OW_COMPILER", "/bin/compile"),
        ("OW_LOG_INIT_ERROR", "1"),
        ("OW_WAIT_FOR_ACK", "1"),
        ("HOME", "/app"),
    ],
    args: &[],
    user: Some("nobody"),
    php_ini: None,
    composer_vendor: None,
};

/// A PHP image: the files of [`php_files`] in the same places; its own name, folder, `ENV`
/// lines and `ENTRYPOINT` words.
const fn php_image(
    name: &'static str,
    folder: &'static str,
    files: &'static [File],
    env: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
) -> Image {
    Image {
        name,
        folder,
        language: Language::Php,
        files,
        folders: &["/phpAction/action"],
        workdir: "/phpAction",
        env,
        args,
        user: None,
        php_ini: Some("/usr/local/etc/php/php.ini"),
        composer_vendor: Some("/phpAction/composer/vendor"),
    }
}

pub const OS_PHP: Image = php_image(
    "OpenServerless php v8.3",
    "openserverless-runtimes/php/v8.3",
    &php_files(0o755),
    &[
        ("OW_COMPILER", "/bin/compile.php"),
        ("OW_EXECUTION_ENV", "apacheopenserverless/action-php-v8.3"),
    ],
    &["-debug"],
);

pub const OW_PYTHON: Image = Image {
    name: "OpenWhisk python3Action (python311Action)",
    folder: "openwhisk-runtime-python/core/python3Action",
    language: Language::Python,
    files: PYTHON_FILES,
    folders: &["/action"],
    workdir: "/",
    env: &[
        ("OW_LOG_INIT_ERROR", "1"),
        ("OW_WAIT_FOR_ACK", "1"),
        ("OW_EXECUTION_ENV", "openwhisk/action-python-v3.11"),
        ("OW_COMPILER", "/bin/compile"),
    ],
    args: &[],
    user: None,
    php_ini: None,
    composer_vendor: None,
};

pub const OW_PHP: Image = php_image(
    "OpenWhisk php8.2Action",
    "openwhisk-runtime-php/core/php8.2Action",
    &php_files(0o644),
    &[("OW_COMPILER", "/bin/compile.php")],
    &[],
);

/// Every image, for checks that concern the table itself.
pub const IMAGES: [&Image; 5] = [&OS_PYTHON, &OS_NODEJS, &OS_PHP, &OW_PYTHON, &OW_PHP];

/// The uid and gid of `nobody` on Debian, the images' base.
const NOBODY: u32 = 65534;

/// The upstream files, or None in a plain clone of the repository, which lacks the shared folder.
pub fn reference_runtimes() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference-runtimes");
    path.is_dir().then_some(path)
}

/// A proxy running inside a laid-out image.
pub struct Started {
    pub proxy: Proxy,
    /// The temporary folder standing for the image's `/`.
    pub root: PathBuf,
}

impl Started {
    /// A path of the image, on this machine.
    pub fn image_path(&self, absolute: &str) -> PathBuf {
        under(&self.root, absolute)
    }
}

impl Deref for Started {
    type Target = Proxy;
    fn deref(&self) -> &Proxy {
        &self.proxy
    }
}

impl DerefMut for Started {
    fn deref_mut(&mut self) -> &mut Proxy {
        &mut self.proxy
    }
}

impl Image {
    pub fn log_init_error(&self) -> bool {
        self.env.iter().any(|(k, _)| *k == "OW_LOG_INIT_ERROR")
    }

    /// The image with its proxy started as root; None (after saying why) when the upstream
    /// files are absent.
    pub fn start(&self) -> Option<Started> {
        let references = skip_without_references()?;
        Some(self.start_in(&references, false))
    }

    /// The image with its proxy started as `nobody`, as the image's `USER` line says; None
    /// (after saying why) when the upstream files are absent or the tests cannot switch users.
    pub fn start_as_user(&self) -> Option<Started> {
        let references = skip_without_references()?;
        assert_eq!(
            self.user,
            Some("nobody"),
            "{}: only images running as nobody",
            self.name
        );
        if unsafe { libc::geteuid() } != 0 {
            eprintln!(
                "skipping {}: running the proxy as nobody needs the tests to run as root",
                self.name
            );
            return None;
        }
        require_tool(
            Command::new("setpriv").arg("--version"),
            "setpriv (util-linux)",
        );
        Some(self.start_in(&references, true))
    }

    /// Lays the image out from `references` and starts its proxy in it.
    fn start_in(&self, references: &Path, as_nobody: bool) -> Started {
        self.require_tools();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("image");
        self.lay_out(&references.join(self.folder), &root);
        let workdir = under(&root, self.workdir);
        if as_nobody {
            // Dockerfile: `chown nobody:root` of the working directory; the rest stays
            // root's and must only be readable.
            set_mode(dir.path(), 0o755);
            chown_tree(&workdir, NOBODY);
        }

        let mut env: Vec<(String, String)> = vec![(
            "PATH".into(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        )];
        for (key, value) in self.env {
            let value = if value.starts_with('/') {
                under(&root, value).to_string_lossy().into_owned()
            } else {
                value.to_string()
            };
            env.push((key.to_string(), value));
        }
        if let Some(ini) = self.php_ini {
            env.push((
                "PHPRC".into(),
                under(&root, ini).to_string_lossy().into_owned(),
            ));
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let nobody = format!("{NOBODY}");
        let (reuid, regid) = (format!("--reuid={nobody}"), format!("--regid={nobody}"));
        let wrapper: Vec<&str> = if as_nobody {
            vec!["setpriv", &reuid, &regid, "--clear-groups"]
        } else {
            vec![]
        };
        let proxy = Proxy::start_as(Options {
            wrapper: &wrapper,
            env: &env,
            args: self.args,
            dir: Some(dir),
            cwd: Some(workdir),
            program: Some(under(&root, "/bin/proxy")),
            clear_env: true,
            ..Options::default()
        });
        Started { proxy, root }
    }

    /// The image's files under `root`, rewritten as allowed and nothing more.
    pub fn lay_out(&self, source: &Path, root: &Path) {
        for folder in ["/", "/bin", "/lib"].iter().chain(self.folders) {
            std::fs::create_dir_all(under(root, folder)).unwrap();
        }
        let home = self.env.iter().find(|(k, _)| *k == "HOME");
        if let Some((_, home)) = home {
            std::fs::create_dir_all(under(root, home)).unwrap();
            if *home == "/tmp" {
                set_mode(&under(root, home), 0o1777);
            }
        }
        let root_text = root.to_str().expect("a UTF-8 temporary path");
        for file in self.files {
            let from = source.join(file.from);
            let mut text = std::fs::read_to_string(&from)
                .unwrap_or_else(|e| panic!("{}: cannot read {}: {e}", self.name, from.display()));
            for (upstream, replacement) in file.rewrites {
                assert!(
                    text.contains(upstream),
                    "{}: {} no longer contains {upstream:?}: the layout needs updating",
                    self.name,
                    from.display()
                );
                text = text.replace(upstream, &replacement.replace("{root}", root_text));
            }
            let to = under(root, file.to);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::write(&to, text).unwrap();
            set_mode(&to, file.mode);
        }
        if let Some(vendor) = self.composer_vendor {
            let vendor = under(root, vendor);
            std::fs::create_dir_all(&vendor).unwrap();
            std::fs::write(
                vendor.join("autoload.php"),
                "<?php\n\
                 // Stand-in for Composer's autoloader: the image installs Guzzle and friends\n\
                 // here from the network, which the tests do not have and their actions do\n\
                 // not use. runner.php only needs the file to exist.\n",
            )
            .unwrap();
        }
        install_proxy(&under(root, "/bin/proxy"));
    }

    /// Fails, saying what to install, when this image's interpreters are missing: CI installs
    /// them, so a missing one must not pass as a skipped test.
    fn require_tools(&self) {
        match self.language {
            Language::Python => require_tool(
                Command::new("/usr/bin/python3").args(["-c", "import virtualenv"]),
                "/usr/bin/python3 with the virtualenv module (apt-get install python3-virtualenv)",
            ),
            Language::Node => {
                require_tool(
                    Command::new("/usr/bin/python3").args(["-c", "pass"]),
                    "/usr/bin/python3, which runs the image's compile script (apt-get install python3)",
                );
                require_tool(
                    Command::new("node").arg("--version"),
                    "node on PATH (apt-get install nodejs)",
                );
            }
            Language::Php => require_tool(
                Command::new("php").arg("--version"),
                "php on PATH (apt-get install php-cli)",
            ),
        }
    }
}

fn skip_without_references() -> Option<PathBuf> {
    let found = reference_runtimes();
    if found.is_none() {
        eprintln!(
            "skipping: {}/../shared/reference-runtimes is absent (the upstream runtime files \
             are test data of the shared folder, not of the repository)",
            env!("CARGO_MANIFEST_DIR")
        );
    }
    found
}

fn require_tool(command: &mut Command, what: &str) {
    let ok = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "the drop-in tests need {what}");
}

/// An absolute image path under the temporary root.
fn under(root: &Path, absolute: &str) -> PathBuf {
    root.join(absolute.trim_start_matches('/'))
}

/// The binary under test as the image's `/bin/proxy`. A hard link where possible: a freshly
/// written executable can fail to start (ETXTBSY) while another test thread forks with the
/// write still open.
fn install_proxy(to: &Path) {
    if std::fs::hard_link(super::binary(), to).is_err() {
        std::fs::copy(super::binary(), to).unwrap();
        set_mode(to, 0o755);
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_tree(path: &Path, id: u32) {
    std::os::unix::fs::chown(path, Some(id), Some(id)).unwrap();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), id);
        }
    }
}
