//! Hardening (issue 5): hostile archives, hostile requests, hostile or dying children, signals
//! and floods, each against the real binary.
//!
//! Archives that the zip and tar crates refuse to write (names with `..`, absolute names,
//! headers that lie, bombs) are built by hand below: a few dozen lines of format each.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

// ---------------------------------------------------------------------------------------------
// Helpers: hand-made archives

/// A CRC-32 (the zip and gzip one) of `n` zero bytes appended to data whose CRC is `crc`
/// (0 for none), without touching `n` bytes: a zero byte moves the CRC register linearly, so
/// the move for `n` bytes is a 32x32 bit matrix raised to the `n`th power by squaring.
fn crc32_extend_zeros(crc: u32, n: u64) -> u32 {
    fn apply(op: &[u32; 32], v: u32) -> u32 {
        (0..32)
            .filter(|i| v >> i & 1 == 1)
            .fold(0, |acc, i| acc ^ op[i])
    }
    let byte = |mut c: u32| {
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
        c
    };
    let mut op: [u32; 32] = std::array::from_fn(|i| byte(1 << i));
    let mut state = !crc;
    let mut n = n;
    while n > 0 {
        if n & 1 == 1 {
            state = apply(&op, state);
        }
        op = std::array::from_fn(|i| apply(&op, op[i]));
        n >>= 1;
    }
    !state
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

/// Raw deflate (no zlib or gzip wrapper) of `prefix` followed by `zeros` zero bytes, in time
/// and memory proportional to the output: after a full flush the compressor starts afresh, so
/// every further MiB of zeros compresses to the very same bytes, which are repeated.
fn deflate_prefix_and_zeros(prefix: &[u8], zeros: u64) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    const MIB: u64 = 1024 * 1024;
    let mut compress = Compress::new(Compression::best(), false);
    let mut step = |input: &[u8], flush: FlushCompress| -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len() / 100 + 4096);
        let mut consumed = 0;
        loop {
            let before_in = compress.total_in();
            if out.capacity() - out.len() < 1024 {
                out.reserve(64 * 1024);
            }
            compress
                .compress_vec(&input[consumed..], &mut out, flush)
                .unwrap();
            consumed += (compress.total_in() - before_in) as usize;
            if consumed == input.len() && out.capacity() - out.len() >= 1024 {
                break;
            }
        }
        out
    };
    let mut stream = step(prefix, FlushCompress::Full);
    let block = vec![0u8; MIB as usize];
    let whole = zeros / MIB;
    if whole > 0 {
        let first = step(&block, FlushCompress::Full);
        stream.extend_from_slice(&first);
        if whole > 1 {
            let second = step(&block, FlushCompress::Full);
            stream.extend_from_slice(&second);
            if whole > 2 {
                let third = step(&block, FlushCompress::Full);
                assert_eq!(second, third, "full flushes must make MiBs of zeros repeat");
                for _ in 2..whole {
                    stream.extend_from_slice(&third);
                }
            }
        }
    }
    let tail = vec![0u8; (zeros % MIB) as usize];
    stream.extend_from_slice(&step(&tail, FlushCompress::Finish));
    stream
}

/// One entry of a hand-made zip: the bytes as stored (already compressed when `method` is 8),
/// and what the headers say, which may be lies.
struct RawZipEntry {
    name: String,
    /// 0 stored, 8 deflated.
    method: u16,
    data: Vec<u8>,
    crc: u32,
    /// The uncompressed size the headers declare.
    size: u32,
    /// Unix mode with file type bits (e.g. 0o100644, 0o120777), in the external attributes.
    mode: u32,
}

impl RawZipEntry {
    fn stored(name: &str, content: &[u8]) -> RawZipEntry {
        RawZipEntry {
            name: name.to_string(),
            method: 0,
            data: content.to_vec(),
            crc: crc32(content),
            size: content.len() as u32,
            mode: 0o100644,
        }
    }

    fn symlink(name: &str, target: &str) -> RawZipEntry {
        RawZipEntry {
            mode: 0o120777,
            ..RawZipEntry::stored(name, target.as_bytes())
        }
    }
}

/// A zip written byte by byte from the specification (APPNOTE 4.3), so names and sizes are
/// exactly what the test says, whatever a zip library would allow.
fn raw_zip(entries: &[RawZipEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let name = e.name.as_bytes();
        // local file header
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed
        out.extend_from_slice(&0u16.to_le_bytes()); // flags
        out.extend_from_slice(&e.method.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // time
        out.extend_from_slice(&0x21u16.to_le_bytes()); // date: 1980-01-01
        out.extend_from_slice(&e.crc.to_le_bytes());
        out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.size.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // extra length
        out.extend_from_slice(name);
        out.extend_from_slice(&e.data);
        // central directory header
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes()); // made by: unix
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&e.method.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0x21u16.to_le_bytes());
        central.extend_from_slice(&e.crc.to_le_bytes());
        central.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        central.extend_from_slice(&e.size.to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes()); // extra
        central.extend_from_slice(&0u16.to_le_bytes()); // comment
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&(e.mode << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let central_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A zip of one file `zeros.bin` holding `zeros` zero bytes, deflated; its headers declare
/// `declared` bytes (the truth when it is `zeros`).
fn zip_of_zeros(zeros: u64, declared: u32) -> Vec<u8> {
    raw_zip(&[RawZipEntry {
        name: "zeros.bin".into(),
        method: 8,
        data: deflate_prefix_and_zeros(&[], zeros),
        crc: crc32_extend_zeros(0, zeros),
        size: declared,
        mode: 0o100644,
    }])
}

const BOMB_BYTES: u64 = 1536 * 1024 * 1024;

/// The 1.5 GiB zip bomb, built once for every test that needs it.
fn zip_bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| zip_of_zeros(BOMB_BYTES, BOMB_BYTES as u32))
}

/// A 512-byte ustar header with a correct checksum. The tar crate's builder refuses names
/// with `..`, which is exactly what these tests need to send.
fn tar_header(name: &str, kind: u8, size: u64, link: &str) -> [u8; 512] {
    fn octal(field: &mut [u8], value: u64) {
        let text = format!("{:0width$o}\0", value, width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    }
    assert!(name.len() <= 100 && link.len() <= 100);
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], if kind == b'5' { 0o755 } else { 0o644 });
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 0);
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// One entry of a hand-made tar: kind `0` file, `2` symlink, `1` hard link, `5` folder.
struct RawTarEntry<'a> {
    name: &'a str,
    kind: u8,
    content: &'a [u8],
    link: &'a str,
}

fn file_entry<'a>(name: &'a str, content: &'a [u8]) -> RawTarEntry<'a> {
    RawTarEntry {
        name,
        kind: b'0',
        content,
        link: "",
    }
}

fn link_entry<'a>(name: &'a str, kind: u8, target: &'a str) -> RawTarEntry<'a> {
    RawTarEntry {
        name,
        kind,
        content: b"",
        link: target,
    }
}

fn raw_tar(entries: &[RawTarEntry]) -> Vec<u8> {
    let mut tar = Vec::new();
    for e in entries {
        tar.extend_from_slice(&tar_header(e.name, e.kind, e.content.len() as u64, e.link));
        tar.extend_from_slice(e.content);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.extend_from_slice(&[0u8; 1024]);
    tar
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn raw_targz(entries: &[RawTarEntry]) -> Vec<u8> {
    gzip(&raw_tar(entries))
}

/// A tar.gz of one file of `zeros` zero bytes (1.5 GiB: 1.5 MB of gzip), built without
/// compressing it all.
fn targz_of_zeros(zeros: u64) -> Vec<u8> {
    let header = tar_header("zeros.bin", b'0', zeros, "");
    // The file's zeros, its padding to 512 and the two zero records that end the archive.
    let trailing = zeros.div_ceil(512) * 512 + 1024;
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend_from_slice(&deflate_prefix_and_zeros(&header, trailing));
    out.extend_from_slice(&crc32_extend_zeros(crc32(&header), trailing).to_le_bytes());
    out.extend_from_slice(&((512 + trailing) as u32).to_le_bytes());
    out
}

// ---------------------------------------------------------------------------------------------
// Helpers: processes

/// A name no other test (or earlier run) uses.
fn unique(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("actionloop-{what}-{}-{nanos}", std::process::id())
}

fn epoch_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// Waits up to `within` for `pid` to stop running.
fn ends_within(pid: u32, within: Duration) -> bool {
    poll(within, || (!procfs::running(pid)).then_some(())).is_some()
}

/// The proxy's peak memory so far (`VmHWM`).
fn peak_kib(proxy: &Proxy) -> u64 {
    procfs::status_kib(proxy.pid(), "VmHWM")
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{}/status", proxy.pid()))
}

/// Kills the processes a test started through the proxy, should they still run when it ends
/// (a failing test must not leave a `sleep 1000` behind). Only while each is still the process
/// first seen: once one has ended its pid may be another test's, a proxy's even.
struct KillOnDrop(Vec<(u32, Vec<u8>)>);

impl KillOnDrop {
    fn new(pids: &[u32]) -> KillOnDrop {
        KillOnDrop(pids.iter().map(|&p| (p, procfs::cmdline(p))).collect())
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for (pid, seen) in &self.0 {
            if procfs::running(*pid) && procfs::cmdline(*pid) == *seen {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

fn wait_for_file(path: &Path, within: Duration) -> String {
    poll(within, || {
        std::fs::read_to_string(path)
            .ok()
            .filter(|text| !text.is_empty())
    })
    .unwrap_or_else(|| panic!("{} never appeared", path.display()))
}

/// Every file and folder under `dir`, relative, for showing what an archive left behind.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A trivial Python action that proves the proxy still initialises and runs.
const GOOD_ACTION: &str = "def main(args):\n    return {\"good\": args.get(\"n\", 0)}\n";

/// `/init` with a good action, then `/run`: the proxy is still healthy.
fn assert_still_serves(proxy: &Proxy) {
    let init = proxy.init_code(GOOD_ACTION, "main");
    assert_status(proxy, "a good /init after the hostile one", &init, 200);
    assert_eq!(run_ok(proxy, json!({"n": 7})), json!({"good": 7}));
}

/// A package refused with a JSON error of status 400 whose text says one of `says`.
fn assert_refused_saying(answer: &Answer, says: &[&str]) {
    assert_eq!(
        answer.status,
        400,
        "expected 400 saying {says:?}, got {} {}",
        answer.status,
        answer.text()
    );
    let error = answer.error();
    assert!(
        says.iter().any(|s| error.contains(s)),
        "the error must say {says:?}: {error}"
    );
}

/// A package refused with a JSON error of status 400 that names `entry`.
fn assert_refused(answer: &Answer, entry: &str) {
    assert_refused_saying(answer, &[entry]);
}

// ---------------------------------------------------------------------------------------------
// Archives: no entry lands outside the action folder

/// One package per way out of the action folder, each refused naming its entry, and nothing
/// written where any of them points: `package` makes the archive around the entry's name,
/// each of `climbs` followed by a fresh name, and last the absolute path of that name.
fn assert_slips_refused(tag: &str, climbs: &[&str], package: impl Fn(&str) -> Vec<u8>) {
    let proxy = Proxy::python();
    // The proxy's folder is <tmp>/<proxy>/, actions go to <tmp>/<proxy>/action/<n>/.
    let outside = proxy.path().parent().unwrap().to_path_buf();
    let name = unique(tag);
    let absolute = outside.join(&name).display().to_string();
    let cases = climbs.iter().map(|climb| format!("{climb}{name}"));
    for entry in cases.chain([absolute]) {
        let answer = proxy.init_binary(&package(&entry), "main");
        assert_refused(&answer, &entry);
    }
    for place in [
        proxy.path().join("action").join(&name),
        proxy.path().join(&name),
        outside.join(&name),
    ] {
        assert!(!place.exists(), "{} was written", place.display());
    }
    assert_still_serves(&proxy);
}

#[test]
fn zip_slip_entries_are_refused_and_nothing_lands_outside() {
    let climbs = ["../", "../../", "../../../", "sub/../../../../"];
    assert_slips_refused("zip-slip", &climbs, |entry| {
        raw_zip(&[
            RawZipEntry::stored("__main__.py", GOOD_ACTION.as_bytes()),
            RawZipEntry::stored(entry, b"escaped"),
        ])
    });
}

#[test]
fn targz_slip_entries_are_refused_and_nothing_lands_outside() {
    let climbs = ["../", "../../../", "./sub/../../../../"];
    assert_slips_refused("tar-slip", &climbs, |entry| {
        raw_targz(&[
            file_entry("__main__.py", GOOD_ACTION.as_bytes()),
            file_entry(entry, b"escaped"),
        ])
    });
}

/// A folder outside every action holding one file, `victim`, that packages try to reach.
struct Victim {
    dir: tempfile::TempDir,
}

impl Victim {
    fn new() -> Victim {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("victim"), b"original").unwrap();
        Victim { dir }
    }

    fn path(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// Nothing was written through a link: the folder holds its one file, unchanged.
    fn assert_untouched(&self) {
        assert_eq!(
            listing(self.dir.path()),
            vec!["victim".to_string()],
            "only the file the test put there"
        );
        assert_eq!(
            std::fs::read(self.dir.path().join("victim")).unwrap(),
            b"original"
        );
    }
}

#[test]
fn zip_symlink_escapes_are_refused() {
    let proxy = Proxy::python();
    let target = Victim::new();
    let target_path = target.path();

    // A symlink to a folder outside, then a file through it.
    let zip = raw_zip(&[
        RawZipEntry::stored("__main__.py", GOOD_ACTION.as_bytes()),
        RawZipEntry::symlink("evil", &target_path),
        RawZipEntry::stored("evil/x", b"through the link"),
    ]);
    assert_refused(&proxy.init_binary(&zip, "main"), "evil/x");

    // The same with the zip crate's own symlink entries and a relative way out.
    let zip = Archive::zip()
        .file("__main__.py", GOOD_ACTION)
        .symlink("up", "../../../..")
        .symlink("evil2", &target_path)
        .folder("evil2/")
        .file("evil2/y", "through the link")
        .build();
    let answer = proxy.init_binary(&zip, "main");
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.error().contains("evil2"), "{}", answer.error());

    assert_still_serves(&proxy);

    // A symlink to a file outside, then a file of the same name (writing through it). The
    // zip reader keeps only the last of entries with one name, so this may well be accepted:
    // what matters is that nothing is written through the link.
    let proxy = Proxy::python();
    let zip = raw_zip(&[
        RawZipEntry::stored("__main__.py", GOOD_ACTION.as_bytes()),
        RawZipEntry::symlink("victim", &format!("{target_path}/victim")),
        RawZipEntry::stored("victim", b"overwritten"),
    ]);
    let answer = proxy.init_binary(&zip, "main");
    assert!(matches!(answer.status, 200 | 400), "{answer:?}");
    target.assert_untouched();
}

#[test]
fn targz_symlink_escapes_are_refused() {
    let proxy = Proxy::python();
    let target = Victim::new();
    let target_path = target.path();

    let cases: Vec<(Vec<u8>, &str)> = vec![
        // a symlinked folder, then a file through it
        (
            raw_targz(&[
                file_entry("__main__.py", GOOD_ACTION.as_bytes()),
                link_entry("evil", b'2', &target_path),
                file_entry("evil/x", b"through the link"),
            ]),
            "evil/x",
        ),
        // a symlinked folder, then a folder entry and a file below it
        (
            raw_targz(&[
                link_entry("evil", b'2', &target_path),
                link_entry("evil/sub/", b'5', ""),
                file_entry("evil/sub/x", b"through the link"),
            ]),
            "evil/sub",
        ),
        // a symlink to a file outside, then a regular file of the same name
        (
            raw_targz(&[
                link_entry("victim", b'2', &format!("{target_path}/victim")),
                file_entry("victim", b"overwritten"),
            ]),
            "victim",
        ),
        // a hard link to a file outside
        (
            raw_targz(&[link_entry("hard", b'1', &format!("{target_path}/victim"))]),
            "hard",
        ),
    ];
    for (targz, entry) in &cases {
        assert_refused(&proxy.init_binary(targz, "main"), entry);
    }
    target.assert_untouched();
    assert_still_serves(&proxy);
}

/// The hand-made bomb builders are exact: a small one reads back with the real CRC.
#[test]
fn hand_made_bombs_are_valid_archives() {
    assert_eq!(crc32_extend_zeros(0, 5000), crc32(&[0u8; 5000]));
    assert_eq!(
        crc32_extend_zeros(crc32(b"head"), 3000),
        crc32(&[&b"head"[..], &[0u8; 3000]].concat())
    );
    let zeros = 3 * 1024 * 1024 + 17;
    let zip = zip_of_zeros(zeros, zeros as u32);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut entry = archive.by_index(0).unwrap();
    let mut content = Vec::new();
    entry.read_to_end(&mut content).unwrap();
    assert_eq!(content.len() as u64, zeros);
    assert!(content.iter().all(|&b| b == 0));

    let targz = targz_of_zeros(zeros);
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&targz[..]));
    let mut entries = tar.entries().unwrap();
    let mut entry = entries.next().unwrap().unwrap();
    assert_eq!(entry.size(), zeros);
    let mut content = Vec::new();
    entry.read_to_end(&mut content).unwrap();
    assert_eq!(content.len() as u64, zeros);
    assert!(entries.next().is_none());
    // The gzip trailer (CRC and size) is right: reading to the end checks it.
    let mut all = Vec::new();
    flate2::read::GzDecoder::new(&targz[..])
        .read_to_end(&mut all)
        .unwrap();
}

fn assert_bomb_refused(proxy: &Proxy, bomb: &[u8], error_says: &[&str]) {
    let started = Instant::now();
    assert_refused_saying(&proxy.init_binary(bomb, "main"), error_says);
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "took too long"
    );
    let peak_kib = peak_kib(proxy);
    assert!(
        peak_kib < 100 * 1024,
        "the proxy's peak RSS was {peak_kib} KiB (over 100 MiB)"
    );
}

#[test]
fn zip_bomb_is_refused_with_bounded_memory() {
    let bomb = zip_bomb();
    assert!(bomb.len() < 2_000_000, "the bomb is {} bytes", bomb.len());
    // Default limits: the central directory declares 1.5 GiB.
    let proxy = Proxy::python();
    assert_bomb_refused(&proxy, bomb, &["OW_MAX_UNPACKED_BYTES"]);
    assert_still_serves(&proxy);
}

#[test]
fn zip_bomb_is_refused_while_streaming_when_the_size_limit_allows_it() {
    // The size limit lets 1.5 GiB pass: the compression ratio stops it while inflating.
    let proxy = Proxy::start_with("python", &[("OW_MAX_UNPACKED_BYTES", "4294967296")], &[]);
    assert_bomb_refused(&proxy, zip_bomb(), &["OW_MAX_COMPRESSION_RATIO"]);
    assert!(
        listing(&proxy.path().join("action"))
            .iter()
            .all(|f| !f.ends_with("zeros.bin")
                || std::fs::metadata(proxy.path().join("action").join(f))
                    .unwrap()
                    .len()
                    < BOMB_BYTES),
        "the bomb was unpacked whole"
    );
    assert_still_serves(&proxy);
}

#[test]
fn zip_whose_header_lies_about_the_size_is_refused() {
    // 1.5 GiB of zeros behind headers that declare 1000 bytes.
    let liar = zip_of_zeros(BOMB_BYTES, 1000);
    let proxy = Proxy::python();
    assert_bomb_refused(&proxy, &liar, &["zeros.bin"]);
    assert_still_serves(&proxy);
}

#[test]
fn targz_bomb_is_refused_with_bounded_memory() {
    let bomb = targz_of_zeros(BOMB_BYTES);
    assert!(bomb.len() < 2_000_000, "the bomb is {} bytes", bomb.len());
    let proxy = Proxy::python();
    assert_bomb_refused(
        &proxy,
        &bomb,
        &["OW_MAX_COMPRESSION_RATIO", "OW_MAX_UNPACKED_BYTES"],
    );
    assert_still_serves(&proxy);
}

#[test]
fn archive_entry_and_size_limits_hold() {
    let proxy = Proxy::start_with(
        "python",
        &[
            ("OW_MAX_ARCHIVE_ENTRIES", "10"),
            ("OW_MAX_UNPACKED_BYTES", "100000"),
        ],
        &[],
    );
    let names: Vec<String> = (0..20).map(|i| format!("f{i}.txt")).collect();
    let many: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let big = vec![b'x'; 200_000];
    let large: &[(&str, &[u8])] = &[("__main__.py", GOOD_ACTION.as_bytes()), ("big", &big)];
    for (files, limit) in [
        (&many[..], "OW_MAX_ARCHIVE_ENTRIES"),
        (large, "OW_MAX_UNPACKED_BYTES"),
    ] {
        for archive in [Archive::zip(), Archive::targz()] {
            let answer = proxy.init_binary(&archive.files(files).build(), "main");
            assert_refused(&answer, limit);
        }
    }
    // Within the limits all is well.
    let ok = Archive::zip()
        .file("__main__.py", GOOD_ACTION)
        .file("small", "x")
        .build();
    init_binary_ok(&proxy, &ok, "main");
}

// ---------------------------------------------------------------------------------------------
// Corrupt archives: a JSON error, never a dropped connection

#[test]
fn corrupt_zip_and_gzip_get_a_json_error() {
    let proxy = Proxy::python();
    let good_zip = Archive::zip().file("__main__.py", GOOD_ACTION).build();
    let good_targz = Archive::targz().file("__main__.py", GOOD_ACTION).build();

    let mut flipped_zip = good_zip.clone();
    // Inside the compressed data of the only entry (after the 30-byte header and the name).
    let data_at = 30 + "__main__.py".len() + 5;
    flipped_zip[data_at] ^= 0xff;
    flipped_zip[data_at + 1] ^= 0xff;
    let mut flipped_gzip = good_targz.clone();
    let middle = flipped_gzip.len() / 2;
    flipped_gzip[middle] ^= 0xff;
    flipped_gzip[middle + 1] ^= 0xff;
    let mut bad_gzip_crc = good_targz.clone();
    let crc_at = bad_gzip_crc.len() - 8;
    bad_gzip_crc[crc_at] ^= 0xff;

    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "zip magic then garbage",
            b"PK\x03\x04 this is no zip at all".to_vec(),
        ),
        ("empty-archive magic alone", b"PK\x05\x06".to_vec()),
        ("zip cut in half", good_zip[..good_zip.len() / 2].to_vec()),
        ("zip with damaged data", flipped_zip),
        (
            "gzip magic then garbage",
            b"\x1f\x8b\x08 not gzip at all".to_vec(),
        ),
        (
            "gzip cut in half",
            good_targz[..good_targz.len() / 2].to_vec(),
        ),
        ("gzip with damaged data", flipped_gzip),
        ("gzip with a wrong CRC", bad_gzip_crc),
        (
            "gzip of something that is not a tar",
            gzip(b"just some text, not a tar archive"),
        ),
    ];
    let mut proxy = proxy;
    let mut failures = Vec::new();
    for (what, package) in &cases {
        // One connection per case: a dropped connection shows as a panic reading the answer.
        let mut connection = proxy.connect();
        let body = json!({"value": {"code": b64(package), "binary": true, "main": "main"}});
        let answer = connection.post("/init", body.to_string().as_bytes());
        let error = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string));
        match error {
            Some(e) if answer.status == 400 && (e.contains("zip") || e.contains("tar")) => {}
            _ => failures.push(format!("{what}: got {} {}", answer.status, answer.text())),
        }
        if answer.status == 200 {
            // Accepted and initialised: the next case needs a proxy that takes an /init.
            proxy = Proxy::python();
        }
    }
    assert!(
        failures.is_empty(),
        "expected 400 with a JSON error about the archive:\n{}",
        failures.join("\n")
    );
    assert_still_serves(&proxy);
}

// ---------------------------------------------------------------------------------------------
// HTTP: body limit, malformed bodies, bodies cut short

#[test]
fn a_200_mib_body_gets_413() {
    let proxy = Proxy::python();
    let length: u64 = 200 * 1024 * 1024;
    let mut connection = proxy.connect();
    connection.send_raw(&request_head(
        "POST",
        "/init",
        &[JSON_BODY],
        Some(length as usize),
    ));
    // Stream the body from another socket handle while this thread waits for the answer: the
    // proxy may answer before reading it all, and close.
    let writer = {
        let mut clone = connection_stream(&mut connection);
        std::thread::spawn(move || {
            let chunk = vec![b' '; 1024 * 1024];
            let mut sent = 0u64;
            while sent < length {
                if clone.write_all(&chunk).is_err() {
                    break;
                }
                sent += chunk.len() as u64;
            }
            sent
        })
    };
    let answer = connection.read_answer();
    assert_eq!(answer.status, 413, "{answer:?}");
    assert!(
        answer.error().contains("OW_MAX_REQUEST_BYTES"),
        "{}",
        answer.error()
    );
    drop(connection);
    let _ = writer.join();
    let peak_kib = peak_kib(&proxy);
    assert!(peak_kib < 100 * 1024, "peak RSS {peak_kib} KiB");
    assert_still_serves(&proxy);
}

/// A second handle on the connection's socket, for writing while the connection reads.
fn connection_stream(connection: &mut Connection) -> TcpStream {
    connection.socket().try_clone().unwrap()
}

#[test]
fn body_limit_is_exact_with_or_without_content_length() {
    let proxy = Proxy::start_with("python", &[("OW_MAX_REQUEST_BYTES", "1000")], &[]);
    let padded = |n: usize| {
        let mut body = b"{\"value\":{},\"pad\":\"".to_vec();
        body.resize(n - 2, b'p');
        body.extend_from_slice(b"\"}");
        assert_eq!(body.len(), n);
        body
    };
    // At the limit: read and handled (no action yet: 500), not 413.
    let at = proxy.post("/run", &padded(1000));
    assert_eq!(at.status, 500, "{at:?}");
    // One byte over, announced by Content-Length.
    let over = proxy.post("/run", &padded(1001));
    assert_eq!(over.status, 413, "{over:?}");
    assert!(over.error().contains("1000"), "{}", over.error());
    // Over the limit, chunked (no Content-Length): stopped while reading.
    let mut connection = proxy.connect();
    let body = padded(3000);
    let mut raw = request_head(
        "POST",
        "/init",
        &[JSON_BODY, ("Transfer-Encoding", "chunked")],
        None,
    );
    for chunk in body.chunks(500) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    connection.send_raw(&raw);
    let answer = connection.read_answer();
    assert_eq!(answer.status, 413, "{answer:?}");
    answer.error();
    assert_still_serves(&proxy);
}

#[test]
fn malformed_json_and_wrong_types_get_400() {
    let proxy = Proxy::python();
    let bad_inits: &[&[u8]] = &[
        b"",
        b"not json",
        b"{\"value\": ",
        b"{\"value\": {\"code\": \"x\"}} trailing",
        b"[1, 2]",
        b"\"a string\"",
        b"{\"value\": 5}",
        b"{\"value\": \"code\"}",
        b"{\"value\": [1]}",
        b"{\"value\": true}",
        b"{\"value\": {\"code\": 7}}",
        b"{\"value\": {\"code\": \"x\", \"binary\": \"yes\"}}",
        b"{\"value\": {\"code\": \"x\", \"main\": 5}}",
        b"{\"value\": {\"code\": \"x\", \"env\": [1]}}",
        b"{\"value\": {\"code\": \"x\", \"env\": {\"A=B\": \"1\"}}}",
        b"\xff\xfe{}",
    ];
    let mut failures = Vec::new();
    // A 400 with a JSON error: refused at the door, not by a launcher that chokes on it.
    let mut refuse = |path: &str, body: &[u8]| {
        let answer = proxy.post(path, body);
        let is_json_error = serde_json::from_slice::<Value>(&answer.body).is_ok_and(|v| {
            v["error"]
                .as_str()
                .is_some_and(|e| !e.contains("command exited"))
        });
        if answer.status != 400 || !is_json_error {
            failures.push(format!(
                "{path} {:?}: got {} {}",
                String::from_utf8_lossy(body),
                answer.status,
                answer.text()
            ));
        }
    };
    for body in bad_inits {
        refuse("/init", body);
    }
    init_ok(&proxy, GOOD_ACTION, "main");
    let bad_runs: &[&[u8]] = &[
        b"",
        b"not json",
        b"{\"value\": ",
        b"{\"value\": {}} {}",
        b"[1, 2]",
        b"\"a string\"",
        b"42",
        b"null",
        // Not UTF-8 inside a string: not JSON either (RFC 8259 section 8.1).
        b"{\"value\": {\"k\": \"v\xfe\"}}",
        b"{\"value\": {\"binar\x8ey\": false}}",
    ];
    for body in bad_runs {
        refuse("/run", body);
    }
    // None of them reached the action: it still answers, and its logs hold one sentinel.
    let run = proxy.run(json!({"n": 1}));
    assert_eq!(run.json(), json!({"good": 1}));
    let (out, err) = proxy.logs_after(1);
    if count_sentinels(&out) != 1 || count_sentinels(&err) != 1 {
        failures.push(format!(
            "{} sentinels on stdout, {} on stderr after one good activation: refused \
             requests reached the action",
            count_sentinels(&out),
            count_sentinels(&err)
        ));
    }
    // An array is not the protocol's body, even one holding an object (last: if it is
    // accepted, this proxy is initialised).
    let fresh = Proxy::python();
    let array = json!([{ "code": GOOD_ACTION }]).to_string();
    let answer = fresh.post("/init", array.as_bytes());
    if answer.status != 400 {
        failures.push(format!(
            "/init {array}: got {} {}",
            answer.status,
            answer.text()
        ));
    }
    assert!(
        failures.is_empty(),
        "expected 400 with a JSON error:\n{}",
        failures.join("\n")
    );
}

#[test]
fn a_body_cut_off_by_the_client_does_not_wedge_the_proxy() {
    let proxy = Proxy::python();
    // A head that announces 1000 bytes, of which only the first few are sent.
    let head = |path: &str| request_head("POST", path, &[JSON_BODY], Some(1000));
    // Cut off and closed, on both routes.
    for path in ["/init", "/run"] {
        let mut connection = proxy.connect();
        connection.send_raw(&head(path));
        connection.send_raw(b"{\"value\":");
        drop(connection);
    }
    // Cut off and left open: other clients are served meanwhile.
    let mut stalled = proxy.connect();
    stalled.send_raw(&head("/init"));
    stalled.send_raw(b"{\"value\":");
    let started = Instant::now();
    assert_still_serves(&proxy);
    assert!(started.elapsed() < Duration::from_secs(30));
    // The stalled one finally closes: the action keeps serving.
    drop(stalled);
    let run = proxy.run(json!({"n": 2}));
    assert_eq!(run.json(), json!({"good": 2}));
}

#[test]
fn a_client_gone_mid_activation_does_not_shift_later_answers() {
    let proxy = Proxy::python();
    let code = "import time\ndef main(args):\n    time.sleep(args.get(\"sleep\", 0))\n    print(\"activation\", args[\"id\"])\n    return {\"id\": args[\"id\"]}\n";
    init_ok(&proxy, code, "main");
    // The client sends a slow activation and hangs up before it answers.
    let mut gone = proxy.connect();
    let body = json!({"value": {"id": 1, "sleep": 1.0}}).to_string();
    gone.send_request("POST", "/run", &[JSON_BODY], body.as_bytes());
    std::thread::sleep(Duration::from_millis(200));
    drop(gone);
    let mut wrong = Vec::new();
    for id in 2..6 {
        let answer = proxy.run(json!({"id": id}));
        if answer.status != 200 || answer.json() != json!({"id": id}) {
            wrong.push(format!(
                "activation {id} got {} {}",
                answer.status,
                answer.text()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "answers shifted after a client hung up mid-activation:\n{}",
        wrong.join("\n")
    );
    // Each activation that reached the action has its logs framed: 1 (abandoned) + 4.
    let (out, err) = proxy.logs_after(5);
    assert_eq!(count_sentinels(&out), 5, "{out}");
    assert_eq!(count_sentinels(&err), 5, "{err}");
}

// ---------------------------------------------------------------------------------------------
// Result channel: garbage, extra lines, oversized lines

/// An ActionLoop executable that misbehaves on request: `mode` in the value says how.
const MISBEHAVING_EXEC: &str = r#"#!/usr/bin/env python3
import json, os, sys, time
out = os.fdopen(3, "wb")
for line in sys.stdin:
    request = json.loads(line)
    value = request.get("value", {})
    answer = json.dumps({"id": value.get("id")}).encode() + b"\n"
    mode = value.get("mode")
    print("activation", value.get("id"), mode, flush=True)
    if mode == "garbage":
        out.write(b"this is not json\n")
    elif mode == "garbage-then-answer":
        out.write(b"garbage\n" + answer)
    elif mode == "twice":
        out.write(answer + answer)
    elif mode == "twice-later":
        out.write(answer)
        out.flush()
        time.sleep(0.1)
        out.write(answer)
    elif mode == "split":
        out.write(answer[:5])
        out.flush()
        time.sleep(0.1)
        out.write(answer[5:])
    elif mode == "not-utf8":
        out.write(b'{"id": "\xfe"}\n')
    elif mode == "formfeed":
        out.write(b"\x0c" + answer)
    elif mode == "string":
        out.write(b"\"just a string\"\n")
    else:
        out.write(answer)
    out.flush()
"#;

#[test]
fn garbage_and_extra_lines_on_fd3_never_shift_answers() {
    let proxy = Proxy::python();
    init_ok(&proxy, MISBEHAVING_EXEC, "main");
    let mut id = 0;
    let mut run = |mode: &str| {
        id += 1;
        let answer = proxy.run(json!({"id": id, "mode": mode}));
        // Give a late extra line the time to arrive before the next request.
        std::thread::sleep(Duration::from_millis(300));
        (id, answer)
    };
    let mut failures = Vec::new();
    for mode in [
        "garbage",
        "garbage-then-answer",
        "string",
        "not-utf8",
        "formfeed",
        "twice",
        "twice-later",
        "split",
    ] {
        let (bad_id, bad) = run(mode);
        let body = serde_json::from_slice::<Value>(&bad.body).ok();
        let is_error = body.as_ref().is_some_and(|v| v["error"].is_string());
        let is_own = body == Some(json!({"id": bad_id}));
        let (fine, expected) = match mode {
            "garbage" | "garbage-then-answer" | "string" | "not-utf8" => {
                (bad.status == 502 && is_error, "502 with a JSON error")
            }
            // A form feed is not JSON whitespace: refused, or passed on as valid JSON.
            "formfeed" => (
                (bad.status == 502 && is_error) || (bad.status == 200 && is_own),
                "502 with a JSON error, or 200 with its own answer as valid JSON",
            ),
            _ => (bad.status == 200 && is_own, "200 with its own answer"),
        };
        if !fine {
            failures.push(format!(
                "{mode} (id {bad_id}): expected {expected}, got {} {:?}",
                bad.status,
                bad.text()
            ));
        }
        for _ in 0..2 {
            let (good_id, good) = run("good");
            if good.status != 200 || good.json() != json!({"id": good_id}) {
                failures.push(format!(
                    "after {mode}: request {good_id} got {} {}",
                    good.status,
                    good.text()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every activation's logs are framed.
    let (out, err) = proxy.logs_after(id);
    assert_eq!(count_sentinels(&out), id, "{out}");
    assert_eq!(count_sentinels(&err), id, "{err}");
}

#[test]
fn concurrent_runs_each_get_their_own_answer() {
    let proxy = Proxy::python();
    let code =
        "import time\ndef main(args):\n    time.sleep(0.01)\n    return {\"id\": args[\"id\"]}\n";
    init_ok(&proxy, code, "main");
    concurrently(&proxy, 8, |t, connection| {
        for i in 0..10 {
            let id = t * 100 + i;
            let answer = connection.run(json!({ "id": id }));
            assert_eq!(answer.status, 200);
            assert_eq!(answer.json(), json!({"id": id}), "a wrong request's answer");
        }
    });
}

#[test]
fn a_result_line_over_the_limit_gets_502_and_the_next_run_works() {
    let proxy = Proxy::start_with("python", &[("OW_MAX_RESULT_BYTES", "1000")], &[]);
    let code = "def main(args):\n    return {\"data\": \"x\" * args[\"size\"]}\n";
    init_ok(&proxy, code, "main");
    let mut failures = Vec::new();
    // Well over (many pipe buffers), and a little over (one read).
    for size in [10_000_000, 5_000, 1_100] {
        let answer = proxy.run(json!({"size": size}));
        let error = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_default();
        if answer.status != 502 || !error.contains("OW_MAX_RESULT_BYTES") {
            failures.push(format!(
                "a result of {size} bytes with OW_MAX_RESULT_BYTES=1000: expected 502 naming \
                 OW_MAX_RESULT_BYTES, got {} {}",
                answer.status,
                String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
            ));
        }
        let next = proxy.run(json!({"size": 10}));
        if next.status != 200 || next.json() != json!({"data": "x".repeat(10)}) {
            failures.push(format!("the run after {size}: got {next:?}"));
        }
    }
    // Under the limit is fine.
    run_ok(&proxy, json!({"size": 900}));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Dying children

const DYING_ACTION: &str = r#"import os, sys, time
def main(args):
    if args.get("kill"):
        print("about to die", flush=True)
        os.kill(os.getpid(), 9)
    if "exit" in args:
        os._exit(args["exit"])
    if args.get("sleep"):
        print("sleeping", flush=True)
        time.sleep(args["sleep"])
    return {"pid": os.getpid()}
"#;

fn pid_of(answer: &Answer) -> u64 {
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.json()["pid"].as_u64().unwrap()
}

const KILLED: &str = "command exited (signal 9: killed, possibly out of memory)";

/// A 400 whose error says `cause`: the child died during the activation.
fn assert_died(answer: &Answer, cause: &str) {
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.error().contains(cause), "{}", answer.error());
}

/// The next run is answered within 10 s by a child other than `old`; its pid.
fn fresh_child(proxy: &Proxy, old: u64) -> u64 {
    let started = Instant::now();
    let pid = pid_of(&proxy.run(json!({})));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_ne!(old, pid, "a fresh child answers");
    pid
}

#[test]
fn a_child_killed_by_sigkill_is_named_and_the_next_run_restarts_it() {
    let proxy = Proxy::python();
    init_ok(&proxy, DYING_ACTION, "main");
    let first = pid_of(&proxy.run(json!({})));

    assert_died(&proxy.run(json!({"kill": true})), KILLED);
    fresh_child(&proxy, first);
    let (out, err) = proxy.logs_after(3);
    assert_eq!(count_sentinels(&out), 3, "{out}");
    assert_eq!(count_sentinels(&err), 3, "{err}");
    let died = out.find("about to die").unwrap();
    let framed = out[died..].find(SENTINEL).map(|i| i + died);
    assert!(framed.is_some(), "the dead activation's logs are framed");

    // The exit status is named too.
    assert_died(&proxy.run(json!({"exit": 3})), "command exited (status 3)");
    pid_of(&proxy.run(json!({})));
}

#[test]
fn a_child_killed_from_outside_during_a_run_is_named_and_replaced() {
    let proxy = Proxy::python();
    init_ok(&proxy, DYING_ACTION, "main");
    let first = pid_of(&proxy.run(json!({})));
    assert_eq!(procfs::children(proxy.pid()), vec![first as u32]);

    let sleeper = proxy.run_in_background(json!({"sleep": 30}));
    // Once it sleeps, kill it as the OOM killer would.
    proxy.wait_stdout("sleeping");
    kill(first as u32, "KILL");
    assert_died(&sleeper.join().unwrap(), KILLED);
    fresh_child(&proxy, first);
}

#[test]
fn an_expired_deadline_kills_the_child_frames_the_logs_and_restarts() {
    let proxy = Proxy::start_with("python", &[("OW_ENFORCE_DEADLINE", "1")], &[]);
    init_ok(&proxy, DYING_ACTION, "main");
    let far = (epoch_millis() + 600_000).to_string();
    let first = pid_of(&proxy.post_json("/run", &json!({"value": {}, "deadline": far})));

    let deadline = (epoch_millis() + 300).to_string();
    let started = Instant::now();
    let answer = proxy.post_json(
        "/run",
        &json!({"value": {"sleep": 30}, "deadline": deadline}),
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the deadline was not enforced"
    );
    assert_eq!(answer.status, 502, "{answer:?}");
    let error = answer.error();
    assert!(error.contains("deadline"), "{error}");

    let (out, err) = proxy.logs_after(2);
    assert_eq!(count_sentinels(&out), 2, "{out}");
    assert_eq!(count_sentinels(&err), 2, "{err}");
    let slept = out.find("sleeping").expect("the action's output");
    assert!(
        out[slept..].contains(SENTINEL),
        "the timed-out activation's stdout is framed: {out}"
    );
    assert!(
        ends_within(first as u32, Duration::from_secs(5)),
        "the old child runs on"
    );

    let second = pid_of(&proxy.post_json("/run", &json!({"value": {}, "deadline": far})));
    assert_ne!(first, second, "a fresh child");
}

// ---------------------------------------------------------------------------------------------
// Signals

#[test]
fn sigterm_with_a_child_running_exits_0_and_leaves_no_process_behind() {
    let mut proxy = Proxy::start_with("python", &[("OW_SHUTDOWN_GRACE_SECONDS", "1")], &[]);
    let code = r#"import json, os, subprocess, time
def main(args):
    grandchild = subprocess.Popen(["sleep", "1000"])
    with open("pids.tmp", "w") as f:
        json.dump({"child": os.getpid(), "grandchild": grandchild.pid}, f)
    os.rename("pids.tmp", "pids")
    time.sleep(30)
    return {}
"#;
    init_ok(&proxy, code, "main");
    let port = proxy.port;
    let _in_flight = std::thread::spawn(move || {
        // No answer is owed: the grace period is shorter than the activation.
        let _ = std::panic::catch_unwind(|| Connection::open(port).post("/run", b"{}"));
    });
    let pids_file = proxy.path().join("action").join("1").join("pids");
    let pids: Value =
        serde_json::from_str(&wait_for_file(&pids_file, Duration::from_secs(10))).unwrap();
    let child = pids["child"].as_u64().unwrap() as u32;
    let grandchild = pids["grandchild"].as_u64().unwrap() as u32;
    // Should the test fail, these must not outlive it.
    let _cleanup = KillOnDrop::new(&[child, grandchild]);
    assert!(procfs::running(child) && procfs::running(grandchild));

    let started = Instant::now();
    proxy.signal("TERM");
    let code = proxy.wait_exit(Duration::from_secs(15));
    assert_eq!(
        code,
        Some(0),
        "expected exit 0 within the grace period (1 s) plus margin, after {:?}; stderr: {}",
        started.elapsed(),
        proxy.stderr()
    );
    for (what, pid) in [("child", child), ("grandchild", grandchild)] {
        assert!(
            ends_within(pid, Duration::from_secs(5)),
            "the action's {what} {pid} outlived the proxy"
        );
    }
}

#[test]
fn sigterm_lets_a_running_activation_finish_within_the_grace_period() {
    let mut proxy = Proxy::start_with("python", &[("OW_SHUTDOWN_GRACE_SECONDS", "20")], &[]);
    let code = "import time\ndef main(args):\n    print(\"started\", flush=True)\n    time.sleep(1)\n    return {\"finished\": True}\n";
    init_ok(&proxy, code, "main");
    let in_flight = proxy.post_in_background("/run", b"{}");
    proxy.wait_stdout("started");
    proxy.signal("TERM");
    let answer = in_flight.join().unwrap();
    assert_status(&proxy, "run", &answer, 200);
    assert_eq!(answer.json(), json!({"finished": true}));
    let started = Instant::now();
    assert_eq!(proxy.wait_exit(Duration::from_secs(15)), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the proxy waited for the whole grace period"
    );
}

// ---------------------------------------------------------------------------------------------
// Output: long lines and floods

#[test]
fn five_megabytes_without_a_newline_are_framed() {
    let proxy = Proxy::python();
    let code = "import sys\ndef main(args):\n    sys.stdout.write(\"o\" * 5000000)\n    sys.stderr.write(\"e\" * 5000000)\n    return {\"done\": True}\n";
    init_ok(&proxy, code, "main");
    let started = Instant::now();
    let result = run_ok(&proxy, json!({}));
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(result, json!({"done": true}));
    let (out, err) = proxy.logs_after(1);
    let line_out = format!("{}\n{SENTINEL}\n", "o".repeat(5_000_000));
    let line_err = format!("{}\n{SENTINEL}\n", "e".repeat(5_000_000));
    assert!(out.ends_with(&line_out), "stdout: 5 MB, newline, sentinel");
    assert!(err.ends_with(&line_err), "stderr: 5 MB, newline, sentinel");
    assert_eq!(out.matches('o').count(), 5_000_000);
    assert_eq!(err.matches('e').count(), 5_000_000);
    run_ok(&proxy, json!({}));
}

#[test]
fn flooding_stdout_and_stderr_neither_blocks_nor_breaks_framing() {
    let proxy = Proxy::python();
    // 50 MiB on each stream, interleaved, in lines; a marker line ends each stream.
    let code = r#"import sys
def main(args):
    block = ("y" * 1023 + "\n") * 1024
    for i in range(args["mib"]):
        sys.stdout.write(block)
        sys.stderr.write(block)
    print("END-OUT")
    print("END-ERR", file=sys.stderr)
    return {"mib": args["mib"]}
"#;
    init_ok(&proxy, code, "main");
    let started = Instant::now();
    let answer = proxy.run(json!({"mib": 50}));
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "the flood took {:?}",
        started.elapsed()
    );
    assert_status(&proxy, "run", &answer, 200);
    assert_eq!(answer.json(), json!({"mib": 50}));
    let second = proxy.run(json!({"mib": 0}));
    assert_eq!(second.json(), json!({"mib": 0}));

    let (out, err) = proxy.logs_after(2);
    for (text, marker) in [(&out, "END-OUT"), (&err, "END-ERR")] {
        let parts = activations(text);
        assert_eq!(parts.len(), 3, "two sentinels, each ending a line");
        let first = parts[0];
        assert!(
            first.ends_with(&format!("{marker}\n")),
            "{marker} right before the sentinel"
        );
        let flood_lines = first.lines().filter(|l| l.len() == 1023).count();
        assert_eq!(
            flood_lines,
            50 * 1024,
            "every flooded line arrived before the sentinel"
        );
        assert_eq!(parts[1], format!("{marker}\n"));
        assert_eq!(parts[2], "");
    }
}
