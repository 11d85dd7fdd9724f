//! Small pure helpers shared by several modules: a stable fingerprint and UTC time stamps.
//! Nothing here touches the system.

/// FNV-1a, 64 bit, over several parts (each part is followed by a separator, so `["ab", "c"]`
/// and `["a", "bc"]` differ). Stable across runs and versions: used for names and fingerprints.
pub fn fnv1a64(parts: &[&[u8]]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter() {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
        h ^= 0xff;
        h = h.wrapping_mul(PRIME);
    }
    h
}

/// 16 bits of [`fnv1a64`] of a string (folded), for short names that must fit 15 bytes.
pub fn short_hash(s: &str) -> u16 {
    let h = fnv1a64(&[s.as_bytes()]);
    ((h >> 48) ^ (h >> 32) ^ (h >> 16) ^ h) as u16
}

/// `YYYYmmddTHHMMSSZ` for a Unix time (UTC), without a date crate.
pub fn utc_stamp(secs: u64) -> String {
    let days = secs / 86400;
    let rem = secs % 86400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// [`utc_stamp`] of now.
pub fn utc_stamp_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    utc_stamp(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(1795564800), "20261125T000000Z");
        assert_eq!(utc_stamp(951_782_400 + 3661), "20000229T010101Z");
    }

    #[test]
    fn fingerprints_separate_parts() {
        assert_ne!(fnv1a64(&[b"ab", b"c"]), fnv1a64(&[b"a", b"bc"]));
        assert_eq!(fnv1a64(&[b"x"]), fnv1a64(&[b"x"]));
        assert_ne!(short_hash("tcpip"), short_hash("tcpip2"));
    }
}
