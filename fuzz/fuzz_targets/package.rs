//! The code package: `Kind::detect` and `unpack` on arbitrary bytes (zip, tar.gz or a source
//! file, by their magic), into a fresh folder with small limits. Nothing may panic, nothing
//! may land outside the folder, and the limits hold whatever the archive says.

#![no_main]

use std::fs;
use std::path::Path;

use actionloop::package::{Kind, Layout, unpack};
use actionloop::settings::Limits;
use libfuzzer_sys::fuzz_target;

const UNPACKED: u64 = 1 << 20;
const ENTRIES: u64 = 100;

/// (bytes in regular files, files and symlinks) under `dir`, never following a symlink.
fn tally(dir: &Path) -> (u64, u64) {
    let (mut bytes, mut entries) = (0, 0);
    for entry in fs::read_dir(dir).expect("read the action folder") {
        let entry = entry.expect("read an entry");
        let kind = entry.file_type().expect("entry type");
        if kind.is_dir() {
            let (b, e) = tally(&entry.path());
            bytes += b;
            entries += e;
        } else {
            entries += 1;
            if kind.is_file() {
                bytes += entry.metadata().expect("metadata").len();
            }
        }
    }
    (bytes, entries)
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read the folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fuzz_target!(|data: &[u8]| {
    let kind = Kind::detect(data);
    // outer/inner: anything climbing out of inner by `..` lands in outer or the temp folder.
    let temp = tempfile::tempdir().expect("tempdir");
    let outer = temp.path().join("outer");
    let inner = outer.join("inner");
    fs::create_dir_all(&inner).expect("mkdir");
    let limits = Limits {
        unpacked_bytes: UNPACKED,
        archive_entries: ENTRIES,
        ..Default::default()
    };

    let result = unpack(data, &inner, "main.py", &limits);

    assert_eq!(
        names(temp.path()),
        ["outer"],
        "written next to the action folder's parent"
    );
    assert_eq!(
        names(&outer),
        ["inner"],
        "written next to the action folder"
    );
    match (kind, &result) {
        (Kind::Plain, Ok(Layout::File(name))) => {
            assert_eq!(name, "main.py");
            assert_eq!(fs::read(inner.join("main.py")).expect("the source"), data);
        }
        (Kind::Plain, other) => panic!("a source file must be saved as it is: {other:?}"),
        (_, Ok(layout)) => assert_eq!(*layout, Layout::Archive),
        (_, Err(_)) => {}
    }
    if kind != Kind::Plain {
        let (bytes, entries) = tally(&inner);
        assert!(
            bytes <= UNPACKED,
            "{bytes} bytes unpacked, the limit is {UNPACKED}"
        );
        assert!(
            entries <= ENTRIES,
            "{entries} files and links, the limit is {ENTRIES}"
        );
    }
    // The error text is built for every failure the proxy reports.
    if let Err(e) = &result {
        let _ = e.to_string();
    }
});
