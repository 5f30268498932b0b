//! Atomic storage of received instances: a data set is streamed into a hidden part file in the
//! store's `.incoming` folder (same file system), checked, synced and renamed into place, so a
//! reader of the store never sees a half-written file; a part file that is dropped unfinished
//! (the peer went away, the data did not parse) is deleted.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use dicom_object::meta::FileMetaTableBuilder;

/// The folder inside the store that holds files being received.
pub const INCOMING_DIR: &str = ".incoming";

/// Why an instance could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file system operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file meta information could not be built (a UID is not valid).
    #[error("the file meta information could not be built: {0}")]
    Meta(String),
    /// The SOP Instance UID cannot name a file.
    #[error("the SOP Instance UID {0:?} is not a valid UID")]
    BadUid(String),
}

/// Whether `uid` is a DICOM UID (digits and dots, at most 64 characters): safe as a file name.
#[must_use]
pub fn is_valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && !uid.starts_with('.')
        && !uid.ends_with('.')
        && !uid.contains("..")
}

/// Removes part files left by an earlier run that was killed mid-transfer; returns how many.
pub fn clean_incoming(store: &Path) -> Result<usize, StorageError> {
    let dir = store.join(INCOMING_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(0) };
    let mut removed = 0;
    for entry in entries.flatten() {
        if entry.path().extension().is_some_and(|e| e == "part") {
            std::fs::remove_file(entry.path()).map_err(|source| StorageError::Io {
                what: "removing a stale part file",
                path: entry.path(),
                source,
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The file meta group for an instance: what the data set is (SOP class and instance), how it
/// is encoded (the negotiated transfer syntax), who wrote it and who sent it.
pub struct MetaInfo<'a> {
    /// Media Storage SOP Class UID.
    pub sop_class_uid: &'a str,
    /// Media Storage SOP Instance UID.
    pub sop_instance_uid: &'a str,
    /// Transfer Syntax UID of the data set as received.
    pub transfer_syntax_uid: &'a str,
    /// Implementation Class UID of the writer.
    pub implementation_class_uid: &'a str,
    /// Source Application Entity Title: the sender's.
    pub source_ae_title: &'a str,
}

/// A received instance being written.
pub struct PartFile {
    part: PathBuf,
    writer: Option<BufWriter<File>>,
    bytes: u64,
}

static PART_COUNTER: AtomicU64 = AtomicU64::new(0);

impl PartFile {
    /// Starts a part file in `store`'s `.incoming` folder: the preamble, `DICM` and the meta
    /// group, ready for the data set's bytes.
    pub fn create(store: &Path, meta: &MetaInfo<'_>) -> Result<Self, StorageError> {
        let dir = store.join(INCOMING_DIR);
        std::fs::create_dir_all(&dir).map_err(|source| StorageError::Io {
            what: "creating the incoming folder",
            path: dir.clone(),
            source,
        })?;
        let n = PART_COUNTER.fetch_add(1, Ordering::Relaxed);
        let part = dir.join(format!("{}-{n}.part", std::process::id()));
        let file = OpenOptions::new().write(true).create_new(true).open(&part).map_err(|source| StorageError::Io {
            what: "creating",
            path: part.clone(),
            source,
        })?;
        let table = FileMetaTableBuilder::new()
            .media_storage_sop_class_uid(meta.sop_class_uid)
            .media_storage_sop_instance_uid(meta.sop_instance_uid)
            .transfer_syntax(meta.transfer_syntax_uid)
            .implementation_class_uid(meta.implementation_class_uid)
            .implementation_version_name("CSNAV_010")
            .source_application_entity_title(meta.source_ae_title)
            .build()
            .map_err(|e| StorageError::Meta(e.to_string()))?;
        let mut this = Self { part, writer: Some(BufWriter::with_capacity(1 << 20, file)), bytes: 0 };
        let mut head = vec![0u8; 128];
        head.extend_from_slice(b"DICM");
        table.write(&mut head).map_err(|e| StorageError::Meta(e.to_string()))?;
        this.write(&head)?;
        this.bytes = 0;
        Ok(this)
    }

    /// Appends data-set bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        let Some(writer) = self.writer.as_mut() else { return Ok(()) };
        writer.write_all(bytes).map_err(|source| StorageError::Io {
            what: "writing",
            path: self.part.clone(),
            source,
        })?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Data-set bytes written so far.
    #[must_use]
    pub fn data_set_bytes(&self) -> u64 {
        self.bytes
    }

    /// Where the bytes are going (for checks before committing).
    #[must_use]
    pub fn part_path(&self) -> &Path {
        &self.part
    }

    /// Flushes and syncs the part file so it can be read back and checked.
    pub fn finish_writing(&mut self) -> Result<(), StorageError> {
        if let Some(writer) = self.writer.take() {
            let file = writer.into_inner().map_err(|e| StorageError::Io {
                what: "flushing",
                path: self.part.clone(),
                source: e.into_error(),
            })?;
            file.sync_all().map_err(|source| StorageError::Io { what: "syncing", path: self.part.clone(), source })?;
        }
        Ok(())
    }

    /// Moves the finished file into place as `store/<name>` (atomically: a rename within one
    /// file system) and syncs the folder; the part file is gone afterwards.
    pub fn commit(mut self, store: &Path, name: &str) -> Result<PathBuf, StorageError> {
        self.finish_writing()?;
        let target = store.join(name);
        std::fs::rename(&self.part, &target).map_err(|source| StorageError::Io {
            what: "moving the received file into place",
            path: target.clone(),
            source,
        })?;
        // The rename is durable once the folder is synced (best effort where a folder cannot be
        // opened for syncing).
        if let Ok(dir) = File::open(store) {
            let _ = dir.sync_all();
        }
        self.part = PathBuf::new();
        Ok(target)
    }
}

impl Drop for PartFile {
    /// An unfinished part file is deleted: nothing half-received stays behind.
    fn drop(&mut self) {
        if !self.part.as_os_str().is_empty() {
            self.writer = None;
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn meta() -> MetaInfo<'static> {
        MetaInfo {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.12.1",
            sop_instance_uid: "1.2.3.4.5",
            transfer_syntax_uid: "1.2.840.10008.1.2.1",
            implementation_class_uid: "2.25.1",
            source_ae_title: "ANGIO",
        }
    }

    #[test]
    fn a_dropped_part_file_leaves_nothing_and_a_committed_one_is_in_place() {
        let store = tempfile::tempdir().unwrap();
        let mut part = PartFile::create(store.path(), &meta()).unwrap();
        part.write(&[1, 2, 3]).unwrap();
        assert!(part.part_path().exists());
        let path = part.part_path().to_owned();
        drop(part);
        assert!(!path.exists(), "dropped unfinished: deleted");
        let mut part = PartFile::create(store.path(), &meta()).unwrap();
        part.write(&[8, 0, 0x16, 0, b'U', b'I', 2, 0, b'1', 0]).unwrap();
        let target = part.commit(store.path(), "1.2.3.4.5.dcm").unwrap();
        let bytes = std::fs::read(&target).unwrap();
        assert_eq!(&bytes[128..132], b"DICM");
        assert!(bytes.ends_with(&[8, 0, 0x16, 0, b'U', b'I', 2, 0, b'1', 0]), "data set bytes as written");
        assert_eq!(std::fs::read_dir(store.path().join(INCOMING_DIR)).unwrap().count(), 0);
    }

    #[test]
    fn uids_that_could_escape_the_store_are_not_valid() {
        assert!(is_valid_uid("1.2.840.10008.5.1.4.1.1.12.1"));
        for bad in ["", "../etc/passwd", "1.2/3", "1..2", ".1", "1.", "1.2.3 ", &"1".repeat(65)] {
            assert!(!is_valid_uid(bad), "{bad:?}");
        }
    }

    #[test]
    fn stale_part_files_are_cleaned() {
        let store = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(store.path().join(INCOMING_DIR)).unwrap();
        std::fs::write(store.path().join(INCOMING_DIR).join("1-0.part"), b"x").unwrap();
        assert_eq!(clean_incoming(store.path()).unwrap(), 1);
        assert_eq!(clean_incoming(store.path()).unwrap(), 0);
    }
}
