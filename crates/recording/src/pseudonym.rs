//! Case pseudonyms: recordings name a case by a keyed hash of its identifier, never by the
//! identifier itself. The key is this installation's secret (`CSNAV_PSEUDONYM_KEY`, or a
//! random key made on first use in the user's configuration directory), so the same case gets
//! the same pseudonym on this workstation and nobody without the key can test a guess.

use std::io::Write as _;
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

/// Where the installation's key lives when `CSNAV_PSEUDONYM_KEY` is not set.
fn key_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("csnav").join("pseudonym-key"))
}

/// The installation's key: from the environment, the key file, or a new random key saved there.
fn key() -> std::io::Result<Vec<u8>> {
    if let Some(k) = std::env::var_os("CSNAV_PSEUDONYM_KEY") {
        return Ok(k.into_encoded_bytes());
    }
    let Some(path) = key_file() else { return Err(std::io::Error::other("no HOME or XDG_CONFIG_HOME for the key")) };
    if let Ok(k) = std::fs::read(&path)
        && k.len() >= 16
    {
        return Ok(k);
    }
    let mut k = vec![0u8; 32];
    std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut k))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut f) => f.write_all(&k)?,
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return std::fs::read(&path),
        Err(e) => return Err(e),
    }
    Ok(k)
}

/// HMAC-free keyed hash (SHA-256 of key, separator, identifier), first 48 bits in hex.
fn keyed(key: &[u8], identifier: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"csnav-pseudonym-v1\0");
    h.update(key);
    h.update(b"\0");
    h.update(identifier.as_bytes());
    let digest = h.finalize();
    digest[..6].iter().fold(String::new(), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The pseudonym of a case identifier, e.g. `case-3f9a0c12b7de`.
pub fn pseudonym(identifier: &str) -> std::io::Result<String> {
    Ok(format!("case-{}", keyed(&key()?, identifier)))
}

#[cfg(test)]
mod tests {
    use super::keyed;

    #[test]
    fn pseudonyms_are_stable_per_key_and_hide_the_identifier() {
        let a = keyed(b"key one", "1.2.826.0.1.3680043.2.1143.1");
        assert_eq!(a, keyed(b"key one", "1.2.826.0.1.3680043.2.1143.1"));
        assert_ne!(a, keyed(b"key two", "1.2.826.0.1.3680043.2.1143.1"));
        assert_ne!(a, keyed(b"key one", "1.2.826.0.1.3680043.2.1143.2"));
        assert_eq!(a.len(), 12);
        assert!(!a.contains("3680043"));
    }
}
