//! Runs announced to a running app: `csnav listen --segment --announce HOST:PORT` tells
//! `csnav live --inbox HOST:PORT` about each run it has received and segmented, one JSON line
//! per run over TCP (schema `csnav.announce/1`). The app reads the run from the shared store
//! itself; an announcement carries where it is, not its pixels.

use std::io::Write as _;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

/// The schema every announcement names.
pub const SCHEMA: &str = "csnav.announce/1";
/// The longest announcement line accepted, bytes.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// How long the listener waits for the app before giving up on one announcement.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One run received and segmented.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Announcement {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The stored run (absolute path).
    pub file: PathBuf,
    /// Its SOP Instance UID.
    pub sop_instance_uid: String,
    /// Who sent it (the angiography system's AE title).
    pub calling_ae_title: String,
    /// The folder of its segmentation (tree.json, mask.png, overlay.png).
    pub segmentation: PathBuf,
    /// Branches in the segmented tree.
    pub branches: usize,
}

/// Sends one announcement to the app at `address`.
pub fn announce(address: &str, announcement: &Announcement) -> anyhow::Result<()> {
    let target = address
        .to_socket_addrs()
        .with_context(|| format!("{address} is not host:port"))?
        .next()
        .with_context(|| format!("{address} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT)
        .with_context(|| format!("no app listening at {address} (csnav live --inbox)"))?;
    let mut line = serde_json::to_vec(announcement).context("encoding the announcement")?;
    line.push(b'\n');
    stream.write_all(&line).with_context(|| format!("sending the announcement to {address}"))?;
    stream.flush().with_context(|| format!("sending the announcement to {address}"))
}

/// Reads one announcement line: it must be JSON of this schema and name an absolute file that
/// exists.
pub fn parse(line: &str) -> Result<Announcement, String> {
    let a: Announcement = serde_json::from_str(line.trim()).map_err(|e| format!("not an announcement: {e}"))?;
    if a.schema != SCHEMA {
        return Err(format!("schema {:?}, expected {SCHEMA:?}", a.schema));
    }
    if !a.file.is_absolute() {
        return Err(format!("the file {} is not an absolute path", a.file.display()));
    }
    if !a.file.is_file() {
        return Err(format!("the file {} does not exist here", a.file.display()));
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn announcement(file: PathBuf) -> Announcement {
        Announcement {
            schema: SCHEMA.into(),
            file,
            sop_instance_uid: "1.2.3".into(),
            calling_ae_title: "ANGIO".into(),
            segmentation: PathBuf::from("/tmp/seg"),
            branches: 7,
        }
    }

    #[test]
    fn an_announcement_round_trips_and_bad_ones_name_the_fault() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("run.dcm");
        std::fs::write(&file, b"x").unwrap();
        let a = announcement(file.clone());
        assert_eq!(parse(&serde_json::to_string(&a).unwrap()).unwrap(), a);
        assert!(parse("garbage").unwrap_err().contains("not an announcement"));
        let other = Announcement { schema: "csnav.announce/9".into(), ..a.clone() };
        assert!(parse(&serde_json::to_string(&other).unwrap()).unwrap_err().contains("schema"));
        let relative = announcement(PathBuf::from("run.dcm"));
        assert!(parse(&serde_json::to_string(&relative).unwrap()).unwrap_err().contains("absolute"));
        let missing = announcement(dir.path().join("gone.dcm"));
        assert!(parse(&serde_json::to_string(&missing).unwrap()).unwrap_err().contains("does not exist"));
    }

    #[test]
    fn announcing_to_no_app_is_an_error_that_says_so() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = announce(&format!("127.0.0.1:{port}"), &announcement(PathBuf::from("/x"))).unwrap_err();
        assert!(format!("{e:#}").contains("no app listening"), "{e:#}");
    }
}
