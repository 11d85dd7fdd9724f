//! Which Debian mirror debootstrap fetches the base image from: the one the host's apt uses
//! (`/etc/apt/sources.list` and `/etc/apt/sources.list.d/*.{list,sources}`), else
//! [`DEFAULT_MIRROR`]. A host that reaches Debian only through its own mirror thus works.

use std::path::PathBuf;

/// Mirror used when the host's apt sources name no Debian mirror.
pub(super) const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// The host's Debian mirror, else [`DEFAULT_MIRROR`].
pub(super) fn debian_mirror() -> String {
    host_debian_mirror().unwrap_or_else(|| DEFAULT_MIRROR.to_string())
}

/// The Debian mirror the host's apt uses, if it uses one.
fn host_debian_mirror() -> Option<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources"))
            .collect();
        more.sort();
        files.extend(more);
    }
    files.iter().find_map(|path| {
        let text = std::fs::read_to_string(path).ok()?;
        if path.extension().is_some_and(|x| x == "sources") {
            mirror_in_deb822(&text)
        } else {
            mirror_in_one_line_list(&text)
        }
    })
}

/// The first enabled `deb` line of a one-line-format sources list (`deb [options] URI suite
/// components`) whose URI is a Debian archive.
fn mirror_in_one_line_list(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.split('#').next()?.trim();
        let mut words = line.split_whitespace();
        if words.next()? != "deb" {
            return None;
        }
        let mut uri = words.next()?;
        if uri.starts_with('[') {
            // Options: "[arch=amd64 signed-by=...]", possibly spread over several words.
            let rest = line.split_once(']')?.1.trim_start();
            uri = rest.split_whitespace().next()?;
        }
        is_debian_archive(uri).then(|| uri.trim_end_matches('/').to_string())
    })
}

/// The first Debian archive among the URIs of the enabled `deb` paragraphs of a deb822 sources
/// file: paragraphs separated by blank lines, `Field: value` with continuation lines.
fn mirror_in_deb822(text: &str) -> Option<String> {
    let mut paragraphs = vec![Vec::<(String, String)>::new()];
    for raw in text.lines() {
        if raw.trim_start().starts_with('#') {
            continue;
        }
        if raw.trim().is_empty() {
            paragraphs.push(Vec::new());
            continue;
        }
        let Some(para) = paragraphs.last_mut() else {
            continue;
        };
        if raw.starts_with([' ', '\t']) {
            if let Some((_, value)) = para.last_mut() {
                value.push(' ');
                value.push_str(raw.trim());
            }
        } else if let Some((k, v)) = raw.split_once(':') {
            para.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    paragraphs.iter().find_map(|para| {
        let field = |name: &str| {
            para.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if field("enabled").is_some_and(|v| v.eq_ignore_ascii_case("no")) {
            return None;
        }
        if !field("types")?.split_whitespace().any(|t| t == "deb") {
            return None;
        }
        field("uris")?
            .split_whitespace()
            .find(|u| is_debian_archive(u))
            .map(|u| u.trim_end_matches('/').to_string())
    })
}

/// Whether a URI is a Debian archive debootstrap can fetch from: http(s) or file, its path
/// ending in `/debian` (not `/debian-security`, not an Ubuntu archive).
fn is_debian_archive(uri: &str) -> bool {
    let known_scheme = ["http://", "https://", "file:/"]
        .iter()
        .any(|s| uri.starts_with(s));
    known_scheme && uri.trim_end_matches('/').ends_with("/debian")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_from_one_line_sources() {
        let text = "\
# deb http://commented.example/debian bookworm main
deb http://security.debian.org/debian-security bookworm-security main
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://ftp.de.debian.org/debian/ bookworm main
deb http://deb.debian.org/debian bookworm-updates main
";
        assert_eq!(
            mirror_in_one_line_list(text).as_deref(),
            Some("http://ftp.de.debian.org/debian")
        );
        let ubuntu = "deb http://archive.ubuntu.com/ubuntu jammy main\n";
        assert_eq!(mirror_in_one_line_list(ubuntu), None);
        let cdrom = "deb cdrom:[Debian GNU/Linux]/ bookworm main\n";
        assert_eq!(mirror_in_one_line_list(cdrom), None);
    }

    #[test]
    fn mirror_from_deb822_sources() {
        // The shape of Debian 12's /etc/apt/sources.list.d/debian.sources.
        let text = "\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
";
        assert_eq!(
            mirror_in_deb822(text).as_deref(),
            Some("http://deb.debian.org/debian")
        );
        let disabled = "\
Types: deb
URIs: http://mirror.one/debian
Suites: bookworm
Enabled: no

Types: deb-src deb
URIs:
 http://mirror.two/ubuntu
 https://mirror.two/debian/
Suites: bookworm
";
        assert_eq!(
            mirror_in_deb822(disabled).as_deref(),
            Some("https://mirror.two/debian")
        );
        assert_eq!(
            mirror_in_deb822("Types: deb-src\nURIs: http://a/debian\n"),
            None
        );
    }

    #[test]
    fn host_mirror_is_a_debian_archive_or_the_default() {
        if let Some(m) = host_debian_mirror() {
            assert!(is_debian_archive(&m), "{m}");
        }
        assert!(is_debian_archive(&debian_mirror()));
        assert!(is_debian_archive(DEFAULT_MIRROR));
        assert!(!is_debian_archive("http://deb.debian.org/debian-security"));
        assert!(!is_debian_archive("ftp://deb.debian.org/debian"));
    }
}
