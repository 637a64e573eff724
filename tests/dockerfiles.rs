//! Static checks of the runtime images' recipes (Dockerfile.python, Dockerfile.nodejs,
//! Dockerfile.php): plain file parsing, no container engine needed. `make smoke` builds and
//! runs the images for real.

use std::collections::HashMap;
use std::path::Path;

/// The three runtime images and the `OW_RUNTIME` each must set.
const IMAGES: [(&str, &str); 3] = [
    ("Dockerfile.python", "python"),
    ("Dockerfile.nodejs", "nodejs"),
    ("Dockerfile.php", "php"),
];

/// Words that mean a Rust toolchain or a C compiler in the final image.
const TOOLCHAIN_WORDS: [&str; 9] = [
    "cargo",
    "rustc",
    "rustup",
    "gcc",
    "g++",
    "cc",
    "clang",
    "build-essential",
    "libc6-dev",
];

#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
    line: usize,
}

#[derive(Debug)]
struct Stage {
    /// What FROM names (the image, with its build arguments unexpanded).
    base: String,
    alias: Option<String>,
    instructions: Vec<Instruction>,
}

#[derive(Debug)]
struct Dockerfile {
    name: String,
    /// `ARG`s before the first `FROM`, with their defaults.
    global_args: HashMap<String, Option<String>>,
    stages: Vec<Stage>,
}

/// Parses the instructions of a Dockerfile: comments and blank lines dropped, lines ending in
/// a backslash joined, keywords upper-cased.
fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (number, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_none()) {
            continue;
        }
        let (continues, content) = match trimmed.strip_suffix('\\') {
            Some(head) => (true, head.trim_end()),
            None => (false, trimmed),
        };
        let (start, mut joined) = pending.take().unwrap_or((number + 1, String::new()));
        if !joined.is_empty() && !content.is_empty() {
            joined.push(' ');
        }
        joined.push_str(content);
        if continues {
            pending = Some((start, joined));
            continue;
        }
        if joined.is_empty() {
            continue;
        }
        let (keyword, args) = joined
            .split_once(char::is_whitespace)
            .unwrap_or((&joined, ""));
        out.push(Instruction {
            keyword: keyword.to_ascii_uppercase(),
            args: args.trim().to_string(),
            line: start,
        });
    }
    assert!(
        pending.is_none(),
        "a Dockerfile ends with a line continuation"
    );
    out
}

fn parse(name: &str, text: &str) -> Dockerfile {
    let mut global_args = HashMap::new();
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in instructions(text) {
        if instruction.keyword == "FROM" {
            let words: Vec<&str> = instruction
                .args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            assert!(
                !words.is_empty(),
                "{name}:{}: FROM without an image",
                instruction.line
            );
            let alias = match words.as_slice() {
                [_, as_kw, alias] if as_kw.eq_ignore_ascii_case("as") => Some(alias.to_string()),
                [_] => None,
                _ => panic!(
                    "{name}:{}: cannot read FROM {}",
                    instruction.line, instruction.args
                ),
            };
            stages.push(Stage {
                base: words[0].to_string(),
                alias,
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(instruction);
        } else {
            assert_eq!(
                instruction.keyword, "ARG",
                "{name}:{}: only ARG may come before the first FROM",
                instruction.line
            );
            let (arg, default) = match instruction.args.split_once('=') {
                Some((arg, default)) => (arg.to_string(), Some(default.to_string())),
                None => (instruction.args.clone(), None),
            };
            global_args.insert(arg, default);
        }
    }
    Dockerfile {
        name: name.to_string(),
        global_args,
        stages,
    }
}

fn load(name: &str) -> Dockerfile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    parse(name, &text)
}

/// Expands `${NAME}` and `$NAME` with the global ARG defaults.
fn expand(dockerfile: &Dockerfile, value: &str) -> String {
    let mut out = value.to_string();
    for (arg, default) in &dockerfile.global_args {
        let default = default.as_deref().unwrap_or("");
        out = out.replace(&format!("${{{arg}}}"), default);
        out = out.replace(&format!("${arg}"), default);
    }
    out
}

/// `ENV K=V K2="V 2"` or the old `ENV K V`, as pairs.
fn env_pairs(args: &str) -> Vec<(String, String)> {
    let args = args.trim();
    let first = args.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (key, value) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
        return vec![(key.to_string(), value.trim().to_string())];
    }
    let mut pairs = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut words = Vec::new();
    for c in args.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => quote = Some(c),
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (None, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    for word in words {
        if let Some((key, value)) = word.split_once('=') {
            pairs.push((key.to_string(), value.to_string()));
        }
    }
    pairs
}

/// The words of a shell command or path list, split on anything but word characters.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "_+-.".contains(c)))
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_matches('.').to_ascii_lowercase())
        .collect()
}

fn final_stage(dockerfile: &Dockerfile) -> &Stage {
    dockerfile
        .stages
        .last()
        .unwrap_or_else(|| panic!("{}: no FROM", dockerfile.name))
}

fn last<'a>(stage: &'a Stage, keyword: &str) -> Option<&'a Instruction> {
    stage
        .instructions
        .iter()
        .rev()
        .find(|i| i.keyword == keyword)
}

#[test]
fn final_stage_has_no_toolchain() {
    for (file, _) in IMAGES {
        let dockerfile = load(file);
        assert!(
            dockerfile.stages.len() >= 2,
            "{file}: the proxy must be compiled in a builder stage, not in the final image"
        );
        let stage = final_stage(&dockerfile);
        let base = expand(&dockerfile, &stage.base);
        assert!(
            !words(&base).iter().any(|w| w.starts_with("rust")),
            "{file}: the final stage starts from the Rust image {base}"
        );
        for instruction in &stage.instructions {
            let checked = match instruction.keyword.as_str() {
                "RUN" => words(&instruction.args),
                // Sources only: the destination is the last word.
                "COPY" | "ADD" => {
                    let mut parts: Vec<&str> = instruction
                        .args
                        .split_whitespace()
                        .filter(|w| !w.starts_with("--"))
                        .collect();
                    parts.pop();
                    words(&parts.join(" "))
                }
                _ => continue,
            };
            for word in &checked {
                let toolchain = TOOLCHAIN_WORDS.contains(&word.as_str())
                    || word.contains("cargo")
                    || word.contains("rustup");
                assert!(
                    !toolchain,
                    "{file}:{}: the final stage uses a compiler or Rust toolchain ({word}): {} {}",
                    instruction.line, instruction.keyword, instruction.args
                );
            }
        }
    }
}

#[test]
fn final_stage_copies_the_proxy_to_bin_proxy() {
    for (file, _) in IMAGES {
        let dockerfile = load(file);
        let stage = final_stage(&dockerfile);
        let builders: Vec<&str> = dockerfile.stages[..dockerfile.stages.len() - 1]
            .iter()
            .filter_map(|s| s.alias.as_deref())
            .collect();
        let copies_proxy = stage.instructions.iter().any(|i| {
            let from = i
                .args
                .split_whitespace()
                .find_map(|w| w.strip_prefix("--from="));
            i.keyword == "COPY"
                && from.is_some_and(|from| builders.contains(&from))
                && i.args.split_whitespace().last() == Some("/bin/proxy")
        });
        assert!(
            copies_proxy,
            "{file}: the final stage must COPY --from=<builder> the binary to /bin/proxy"
        );
        let entrypoint = last(stage, "ENTRYPOINT")
            .unwrap_or_else(|| panic!("{file}: no ENTRYPOINT in the final stage"));
        let exec_form: String = entrypoint.args.split_whitespace().collect();
        assert_eq!(
            exec_form, r#"["/bin/proxy"]"#,
            "{file}:{}: ENTRYPOINT must be [\"/bin/proxy\"] (exec form, so `docker run IMAGE --port N` passes flags to the proxy)",
            entrypoint.line
        );
    }
}

#[test]
fn final_stage_sets_ow_runtime() {
    for (file, runtime) in IMAGES {
        let dockerfile = load(file);
        let stage = final_stage(&dockerfile);
        let values: Vec<String> = stage
            .instructions
            .iter()
            .filter(|i| i.keyword == "ENV")
            .flat_map(|i| env_pairs(&i.args))
            .filter(|(key, _)| key == "OW_RUNTIME")
            .map(|(_, value)| value)
            .collect();
        assert_eq!(
            values.last().map(String::as_str),
            Some(runtime),
            "{file}: the final stage must set ENV OW_RUNTIME={runtime}"
        );
    }
}

#[test]
fn final_stage_preloads_the_library_the_image_ships() {
    for (file, library) in [
        ("Dockerfile.python", "requests"),
        ("Dockerfile.nodejs", "openwhisk"),
        ("Dockerfile.php", "/opt/ow/php/preload.php"),
    ] {
        let dockerfile = load(file);
        let stage = final_stage(&dockerfile);
        let preload: Vec<String> = stage
            .instructions
            .iter()
            .filter(|i| i.keyword == "ENV")
            .flat_map(|i| env_pairs(&i.args))
            .filter(|(key, _)| key == "OW_PRELOAD")
            .map(|(_, value)| value)
            .collect();
        assert_eq!(preload.last().map(String::as_str), Some(library), "{file}");
        let text = std::fs::read_to_string(file).unwrap();
        let shipped = match library {
            "requests" => text.contains("install --no-cache-dir requests"),
            "openwhisk" => text.contains("openwhisk@"),
            _ => text.contains("> /opt/ow/php/preload.php"),
        };
        assert!(shipped, "{file} preloads {library}, which it must ship");
    }
}

#[test]
fn final_stage_runs_as_a_user_that_is_not_root() {
    for (file, _) in IMAGES {
        let dockerfile = load(file);
        let stage = final_stage(&dockerfile);
        let user = last(stage, "USER")
            .unwrap_or_else(|| panic!("{file}: no USER in the final stage: it would run as root"));
        let name = expand(&dockerfile, &user.args);
        let name = name.split(':').next().unwrap_or("").trim();
        assert!(
            !name.is_empty() && name != "root" && !name.trim_start_matches('0').is_empty(),
            "{file}:{}: USER {} is root",
            user.line,
            user.args
        );
        // Numeric, so that Kubernetes' runAsNonRoot can verify it without /etc/passwd.
        assert!(
            name.chars().all(|c| c.is_ascii_digit()),
            "{file}:{}: USER should be numeric (uid[:gid]), not {name}",
            user.line
        );
        // The proxy writes ./action/<n>/: the working directory must be made and owned for it.
        let workdir = last(stage, "WORKDIR")
            .unwrap_or_else(|| panic!("{file}: no WORKDIR in the final stage"));
        let owned = stage.instructions.iter().any(|i| {
            i.keyword == "RUN"
                && i.args.contains("chown")
                && i.args.contains(&workdir.args)
                && i.args.contains(name)
        });
        assert!(
            owned,
            "{file}: WORKDIR {} must be chowned to the user {name} in a RUN",
            workdir.args
        );
    }
}

#[test]
fn final_stage_exposes_8080() {
    for (file, _) in IMAGES {
        let dockerfile = load(file);
        let stage = final_stage(&dockerfile);
        let exposed = stage
            .instructions
            .iter()
            .filter(|i| i.keyword == "EXPOSE")
            .flat_map(|i| i.args.split_whitespace())
            .any(|port| port == "8080" || port == "8080/tcp");
        assert!(exposed, "{file}: the final stage must EXPOSE 8080");
    }
}

#[test]
fn base_images_are_build_arguments_with_official_defaults() {
    let expected = [
        (
            "Dockerfile.python",
            "PYTHON_IMAGE",
            "python:3.12-slim-bookworm",
        ),
        ("Dockerfile.nodejs", "NODE_IMAGE", "node:22-bookworm-slim"),
        ("Dockerfile.php", "PHP_IMAGE", "php:8.3-cli-bookworm"),
    ];
    for (file, arg, default) in expected {
        let dockerfile = load(file);
        assert_eq!(
            dockerfile
                .global_args
                .get(arg)
                .cloned()
                .flatten()
                .as_deref(),
            Some(default),
            "{file}: ARG {arg} must default to {default}"
        );
        assert_eq!(
            final_stage(&dockerfile).base,
            format!("${{{arg}}}"),
            "{file}: the final stage must start FROM ${{{arg}}}"
        );
        // Every FROM resolves with the defaults alone: a plain `docker build` needs no flags.
        for stage in &dockerfile.stages {
            let base = expand(&dockerfile, &stage.base);
            assert!(
                !base.contains('$') && !base.is_empty(),
                "{file}: FROM {} has no default",
                stage.base
            );
        }
        let rust = dockerfile
            .global_args
            .get("RUST_IMAGE")
            .cloned()
            .flatten()
            .unwrap_or_default();
        assert!(
            rust.starts_with("rust:") && rust.ends_with("-bookworm"),
            "{file}: the builder should be an official Rust image on bookworm, like the final image (glibc), not {rust}"
        );
    }
}

#[test]
fn builder_stage_is_the_same_in_all_three() {
    // One compile serves all three images through the layer cache only if the builder stages
    // are identical.
    let render = |file: &str| -> Vec<String> {
        let dockerfile = load(file);
        let builder = dockerfile
            .stages
            .iter()
            .find(|s| s.alias.as_deref() == Some("builder"))
            .unwrap_or_else(|| panic!("{file}: no stage named builder"));
        let mut lines = vec![format!("FROM {}", builder.base)];
        lines.extend(
            builder
                .instructions
                .iter()
                .map(|i| format!("{} {}", i.keyword, i.args)),
        );
        lines
    };
    let python = render("Dockerfile.python");
    for (file, _) in &IMAGES[1..] {
        assert_eq!(
            render(file),
            python,
            "{file}: the builder stage differs from Dockerfile.python's"
        );
    }
}

#[test]
fn build_context_leaves_out_build_output() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".dockerignore");
    let text = std::fs::read_to_string(&path).expect("a .dockerignore next to the Dockerfiles");
    let entries: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in ["target", ".git"] {
        assert!(
            entries.contains(&needed),
            ".dockerignore must leave out {needed}"
        );
    }
}

#[test]
fn parser_reads_continuations_and_env_forms() {
    let dockerfile = parse(
        "sample",
        "ARG BASE=debian:bookworm\n# comment\nFROM ${BASE} AS one\nRUN a \\\n    && b\n\nFROM one\nENV A=1 B=\"two words\"\nENV C 3\nUSER 10001:10001\n",
    );
    assert_eq!(dockerfile.stages.len(), 2);
    assert_eq!(
        expand(&dockerfile, &dockerfile.stages[0].base),
        "debian:bookworm"
    );
    assert_eq!(dockerfile.stages[0].alias.as_deref(), Some("one"));
    assert_eq!(dockerfile.stages[0].instructions[0].args, "a && b");
    let env: Vec<(String, String)> = dockerfile.stages[1]
        .instructions
        .iter()
        .filter(|i| i.keyword == "ENV")
        .flat_map(|i| env_pairs(&i.args))
        .collect();
    assert_eq!(
        env,
        [("A", "1"), ("B", "two words"), ("C", "3")].map(|(k, v)| (k.to_string(), v.to_string()))
    );
    assert_eq!(
        words("apt-get install gcc g++"),
        ["apt-get", "install", "gcc", "g++"]
    );
}
