//! The two names forward mode gives an action: the md5 of its code (`__OW_CODE_HASH`,
//! `actionCodeHash`), shared by every client that sends the same code, and a random UUID per
//! client (`proxiedActionID`), which the server counts to know when the last client left.

use std::io::Read;

/// The md5 of the code as `/init` sent it (the base64 text of an archive), in lower-case hex,
/// as the fork computes it.
pub fn code_hash(code: &[u8]) -> String {
    use md5::Digest;
    hex(&md5::Md5::digest(code))
}

/// A fresh random UUID (version 4), from the kernel's random bytes. Should `/dev/urandom`
/// be missing, the time, the pid and a counter, hashed, are unique enough: the id only has
/// to differ from the other clients' of one server.
pub fn fresh_id() -> String {
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        use md5::Digest;
        static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let seed = format!("{now} {} {count}", std::process::id());
        bytes.copy_from_slice(&md5::Md5::digest(seed.as_bytes()));
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Whether `hash` can name a folder and a file under `/tmp` as it is: what an md5 in hex,
/// or any plain name, is.
pub fn is_plain_name(hash: &str) -> bool {
    (1..=128).contains(&hash.len())
        && hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_hashes_are_md5_in_hex() {
        assert_eq!(code_hash(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            code_hash(b"The quick brown fox jumps over the lazy dog"),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
    }

    #[test]
    fn ids_are_fresh_version_4_uuids() {
        let (a, b) = (fresh_id(), fresh_id());
        assert_ne!(a, b);
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]), "{a}");
        assert!(a.bytes().all(|c| c == b'-' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn only_plain_names_are_hashes() {
        assert!(is_plain_name("d41d8cd98f00b204e9800998ecf8427e"));
        assert!(is_plain_name("test-action_hash"));
        for bad in ["", "..", "a/b", "a b", "é", &"x".repeat(129)] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }
}
