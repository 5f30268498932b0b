//! csnav as a client of a PACS or another workstation: C-ECHO, C-STORE of files (each data set
//! sent byte for byte as it is stored), C-FIND at patient, study, series or image level, and
//! C-MOVE of a study or series to an AE (csnav's own storage SCP, usually). One association
//! per call, released at the end.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::pdu::{PDataValue, PDataValueType, PresentationContextResultReason};
use dicom_ul::{ClientAssociation, ClientAssociationOptions, Pdu};

use crate::dimse::{self, Command, Request, command_field, status};
use crate::sop_class;
use crate::store_scp::is_valid_ae_title;
use venogram::error_chain;

/// Explicit VR Little Endian, the transfer syntax identifiers are proposed in first.
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
/// Implicit VR Little Endian, the default every peer accepts.
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
/// The largest identifier (C-FIND match) accepted from a peer, bytes.
const MAX_IDENTIFIER_BYTES: usize = 1 << 20;

/// A remote application entity: `AE@host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAe {
    /// Its AE title (the called AE title of associations to it).
    pub ae_title: String,
    /// `host:port`.
    pub address: String,
}

impl FromStr for RemoteAe {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ae_title, address) = s.split_once('@').ok_or_else(|| format!("{s:?} is not AE@host:port (no '@')"))?;
        if !is_valid_ae_title(ae_title) {
            return Err(format!("{ae_title:?} is not an AE title (1-16 printable characters, no backslash)"));
        }
        let (host, port) = address.rsplit_once(':').ok_or_else(|| format!("{address:?} is not host:port"))?;
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("{address:?} is not host:port with a port of 1-65535"));
        }
        Ok(Self { ae_title: ae_title.to_owned(), address: address.to_owned() })
    }
}

impl std::fmt::Display for RemoteAe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.ae_title, self.address)
    }
}

/// How csnav introduces itself and how long it waits.
#[derive(Debug, Clone)]
pub struct ScuConfig {
    /// The calling AE title.
    pub calling_ae_title: String,
    /// Connection, read and write timeout.
    pub timeout: Duration,
    /// The largest PDU csnav accepts, bytes.
    pub max_pdu_length: u32,
}

impl ScuConfig {
    /// A configuration with a 30 s timeout and 256 KiB PDUs.
    #[must_use]
    pub fn new(calling_ae_title: &str) -> Self {
        Self {
            calling_ae_title: calling_ae_title.to_owned(),
            timeout: Duration::from_secs(30),
            max_pdu_length: 262_144,
        }
    }
}

/// Why an SCU operation failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ScuError {
    /// The calling AE title is not a valid AE title.
    #[error("the calling AE title {0:?} is not 1-16 printable characters without a backslash")]
    BadAeTitle(String),
    /// No association: the peer is unreachable or rejected it.
    #[error("cannot associate with {peer}: {reason}")]
    Associate {
        /// The peer.
        peer: String,
        /// Why, in words (the rejection's source and reason, or the socket error).
        reason: String,
    },
    /// The peer accepted no presentation context the operation needs.
    #[error("{peer} does not accept {what}")]
    NotAccepted {
        /// The peer.
        peer: String,
        /// The SOP class (and transfer syntax) refused.
        what: String,
    },
    /// The exchange broke: a dropped connection, an abort, or a malformed message.
    #[error("{peer}: {reason}")]
    Protocol {
        /// The peer.
        peer: String,
        /// What went wrong.
        reason: String,
    },
    /// The peer answered with a failure status.
    #[error("{peer} answered the {operation} with status 0x{status:04X}{}", comment.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        /// The peer.
        peer: String,
        /// The operation (C-ECHO, C-FIND, C-MOVE).
        operation: &'static str,
        /// Its status.
        status: u16,
        /// The Error Comment, or csnav's reading of the status.
        comment: Option<String>,
    },
    /// The query could not be built or a match could not be read.
    #[error("{0}")]
    Query(String),
}

/// One message received: its command and, when one followed, its data set bytes.
struct Message {
    command: Command,
    data: Option<Vec<u8>>,
}

/// An established association and the PDVs received but not yet consumed.
struct Link {
    association: ClientAssociation<TcpStream>,
    peer: String,
    queued: VecDeque<PDataValue>,
    next_message_id: u16,
}

impl Link {
    /// Associates with `peer`, proposing each (abstract syntax, transfer syntaxes) context.
    fn open(config: &ScuConfig, peer: &RemoteAe, contexts: &[(&str, Vec<&str>)]) -> Result<Self, ScuError> {
        if !is_valid_ae_title(&config.calling_ae_title) {
            return Err(ScuError::BadAeTitle(config.calling_ae_title.clone()));
        }
        let mut options = ClientAssociationOptions::new()
            .calling_ae_title(config.calling_ae_title.clone())
            .called_ae_title(peer.ae_title.clone())
            .max_pdu_length(config.max_pdu_length)
            .connection_timeout(config.timeout)
            .read_timeout(config.timeout)
            .write_timeout(config.timeout);
        for (abstract_syntax, transfer_syntaxes) in contexts {
            options = options.with_presentation_context(*abstract_syntax, transfer_syntaxes.clone());
        }
        let association = options
            .establish(peer.address.as_str())
            .map_err(|e| ScuError::Associate { peer: peer.to_string(), reason: error_chain(&e) })?;
        Ok(Self { association, peer: peer.to_string(), queued: VecDeque::new(), next_message_id: 1 })
    }

    fn protocol(&self, reason: impl Into<String>) -> ScuError {
        ScuError::Protocol { peer: self.peer.clone(), reason: reason.into() }
    }

    /// The accepted context for `abstract_syntax` (in `transfer_syntax` when given): its id
    /// and transfer syntax.
    fn context(&self, abstract_syntax: &str, transfer_syntax: Option<&str>) -> Option<(u8, String)> {
        self.association
            .presentation_contexts()
            .iter()
            .find(|pc| {
                pc.reason == PresentationContextResultReason::Acceptance
                    && dimse::trim_padding(&pc.abstract_syntax) == abstract_syntax
                    && transfer_syntax.is_none_or(|ts| dimse::trim_padding(&pc.transfer_syntax) == ts)
            })
            .map(|pc| (pc.id, dimse::trim_padding(&pc.transfer_syntax).to_owned()))
    }

    fn required_context(&self, abstract_syntax: &str) -> Result<(u8, String), ScuError> {
        self.context(abstract_syntax, None)
            .ok_or_else(|| ScuError::NotAccepted { peer: self.peer.clone(), what: sop_class::name(abstract_syntax) })
    }

    fn message_id(&mut self) -> u16 {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        id
    }

    /// Sends a request's command set, then its data set from `data` when there is one.
    fn send(&mut self, context_id: u8, request: &Request<'_>, data: Option<&mut dyn Read>) -> Result<(), ScuError> {
        let command = dimse::request(request).map_err(|e| ScuError::Query(e.to_string()))?;
        self.association
            .send(&dimse::command_pdu(context_id, command))
            .map_err(|e| self.protocol(format!("sending the request: {}", error_chain(&e))))?;
        if let Some(reader) = data {
            let mut writer = self.association.send_pdata(context_id);
            let sent = std::io::copy(reader, &mut writer).and_then(|_| writer.finish());
            sent.map_err(|e| self.protocol(format!("sending the data set: {e}")))?;
        }
        Ok(())
    }

    /// The next PDV, from the queue or the wire.
    fn next_pdv(&mut self) -> Result<PDataValue, ScuError> {
        loop {
            if let Some(pdv) = self.queued.pop_front() {
                return Ok(pdv);
            }
            match self.association.receive() {
                Ok(Pdu::PData { data }) => self.queued.extend(data),
                Ok(Pdu::AbortRQ { source }) => return Err(self.protocol(format!("the peer aborted ({source:?})"))),
                Ok(Pdu::ReleaseRQ) => return Err(self.protocol("the peer released the association mid-operation")),
                Ok(other) => return Err(self.protocol(format!("unexpected PDU {}", other.short_description()))),
                Err(e) => return Err(self.protocol(format!("waiting for the answer: {}", error_chain(&e)))),
            }
        }
    }

    /// Receives one message: a command set and the data set that follows it, if any.
    fn receive(&mut self) -> Result<Message, ScuError> {
        let mut command_bytes = Vec::new();
        let command = loop {
            let pdv = self.next_pdv()?;
            if pdv.value_type != PDataValueType::Command {
                return Err(self.protocol("a data set arrived where a command set was expected"));
            }
            command_bytes.extend_from_slice(&pdv.data);
            if pdv.is_last {
                break Command::parse(&command_bytes).map_err(|e| self.protocol(e.to_string()))?;
            }
        };
        if !command.has_data_set {
            return Ok(Message { command, data: None });
        }
        let mut data = Vec::new();
        loop {
            let pdv = self.next_pdv()?;
            if pdv.value_type != PDataValueType::Data {
                return Err(self.protocol("a command set arrived before the previous data set ended"));
            }
            data.extend_from_slice(&pdv.data);
            if data.len() > MAX_IDENTIFIER_BYTES {
                return Err(self.protocol(format!("an identifier over {MAX_IDENTIFIER_BYTES} bytes")));
            }
            if pdv.is_last {
                return Ok(Message { command, data: Some(data) });
            }
        }
    }

    /// Releases the association; a peer that closes without answering the release is no error.
    fn release(self) {
        if let Err(e) = self.association.release() {
            tracing::debug!("releasing the association with {}: {}", self.peer, error_chain(&e));
        }
    }

    fn status_error(&self, operation: &'static str, command: &Command) -> ScuError {
        let code = command.status.unwrap_or(0xFFFF);
        ScuError::Status {
            peer: self.peer.clone(),
            operation,
            status: code,
            comment: command.error_comment.clone().filter(|c| !c.is_empty()).or_else(|| status_meaning(code)),
        }
    }
}

/// What a failure status means, for the ones a retrieve commonly meets (PS3.4 C.4.2.1.5).
fn status_meaning(code: u16) -> Option<String> {
    Some(
        match code {
            0xA701 => "out of resources: unable to calculate the number of matches",
            0xA702 => "out of resources: unable to perform sub-operations",
            0xA801 => "move destination unknown: the PACS has no address for that AE title",
            0xA900 => "identifier does not match SOP class",
            0xC000..=0xCFFF => "unable to process",
            status::CANCEL => "cancelled",
            _ => return None,
        }
        .to_owned(),
    )
}

/// Asks `peer` for a C-ECHO: Ok when it answers success.
pub fn echo(config: &ScuConfig, peer: &RemoteAe) -> Result<(), ScuError> {
    let mut link = Link::open(config, peer, &[(sop_class::VERIFICATION, vec![IMPLICIT_LE])])?;
    let (context, _) = link.required_context(sop_class::VERIFICATION)?;
    let id = link.message_id();
    link.send(context, &Request::new(command_field::C_ECHO_RQ, id, sop_class::VERIFICATION), None)?;
    let answer = link.receive()?;
    if answer.command.status != Some(status::SUCCESS) {
        return Err(link.status_error("C-ECHO", &answer.command));
    }
    link.release();
    Ok(())
}

/// A Part 10 file ready to send: what it is and where its data set starts.
#[derive(Debug, Clone)]
struct SendableFile {
    path: PathBuf,
    sop_class_uid: String,
    sop_instance_uid: String,
    transfer_syntax_uid: String,
    data_set_offset: u64,
}

impl SendableFile {
    /// Reads the file meta group: the SOP class, instance and transfer syntax, and the offset
    /// of the data set (after the 128-byte preamble, "DICM" and the group its length counts).
    fn open(path: &Path) -> Result<Self, String> {
        let mut file = BufReader::new(File::open(path).map_err(|e| format!("cannot open: {e}"))?);
        let mut head = [0u8; 144];
        file.read_exact(&mut head).map_err(|_| "shorter than a DICOM file's preamble and meta header".to_owned())?;
        if &head[128..132] != b"DICM" {
            return Err("not a DICOM Part 10 file (no DICM at byte 128)".into());
        }
        // (0002,0000) UL, explicit VR little endian: tag, "UL", length 4, value.
        if head[132..140] != [2, 0, 0, 0, b'U', b'L', 4, 0] {
            return Err("the file meta group does not start with its group length (0002,0000)".into());
        }
        let group_length = u32::from_le_bytes([head[140], head[141], head[142], head[143]]);
        // FileMetaTable reads from the "DICM" magic.
        file.seek(SeekFrom::Start(128)).map_err(|e| e.to_string())?;
        let meta = dicom_object::meta::FileMetaTable::from_reader(&mut file)
            .map_err(|e| format!("the file meta group does not parse: {e}"))?;
        Ok(Self {
            path: path.to_owned(),
            sop_class_uid: dimse::trim_padding(meta.media_storage_sop_class_uid()).to_owned(),
            sop_instance_uid: dimse::trim_padding(meta.media_storage_sop_instance_uid()).to_owned(),
            transfer_syntax_uid: dimse::trim_padding(meta.transfer_syntax()).to_owned(),
            data_set_offset: 144 + u64::from(group_length),
        })
    }
}

/// How one file's C-STORE went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOutcome {
    /// The file.
    pub path: PathBuf,
    /// Its SOP Instance UID (empty when the file could not be read).
    pub sop_instance_uid: String,
    /// `Ok(status)` when the peer answered success or a warning; `Err(reason)` otherwise.
    pub result: Result<u16, String>,
}

/// Sends each file to `peer` in its own transfer syntax, on one association; a file the peer
/// refuses (or that cannot be read) is reported in its outcome and the others still go.
pub fn store(config: &ScuConfig, peer: &RemoteAe, files: &[PathBuf]) -> Result<Vec<StoreOutcome>, ScuError> {
    let opened: Vec<(PathBuf, Result<SendableFile, String>)> =
        files.iter().map(|p| (p.clone(), SendableFile::open(p))).collect();
    let mut contexts: Vec<(&str, Vec<&str>)> = Vec::new();
    for file in opened.iter().filter_map(|(_, f)| f.as_ref().ok()) {
        let pair = (file.sop_class_uid.as_str(), vec![file.transfer_syntax_uid.as_str()]);
        if !contexts.contains(&pair) {
            contexts.push(pair);
        }
    }
    if contexts.len() > 128 {
        return Err(ScuError::Query(format!(
            "{} different SOP class / transfer syntax pairs: one association carries at most 128",
            contexts.len()
        )));
    }
    let mut outcomes = Vec::with_capacity(opened.len());
    if contexts.is_empty() {
        outcomes.extend(opened.into_iter().map(|(path, f)| StoreOutcome {
            path,
            sop_instance_uid: String::new(),
            result: Err(f.err().unwrap_or_default()),
        }));
        return Ok(outcomes);
    }
    let mut link = Link::open(config, peer, &contexts)?;
    for (path, file) in opened {
        let file = match file {
            Ok(f) => f,
            Err(reason) => {
                outcomes.push(StoreOutcome { path, sop_instance_uid: String::new(), result: Err(reason) });
                continue;
            }
        };
        let result = store_one(&mut link, &file)?;
        outcomes.push(StoreOutcome { path, sop_instance_uid: file.sop_instance_uid, result });
    }
    link.release();
    Ok(outcomes)
}

/// One C-STORE: the file's outcome, or the error that ended the association.
fn store_one(link: &mut Link, file: &SendableFile) -> Result<Result<u16, String>, ScuError> {
    let Some((context, _)) = link.context(&file.sop_class_uid, Some(&file.transfer_syntax_uid)) else {
        return Ok(Err(format!(
            "{} refused {} in transfer syntax {}",
            link.peer,
            sop_class::name(&file.sop_class_uid),
            file.transfer_syntax_uid
        )));
    };
    let mut reader =
        match File::open(&file.path).and_then(|mut f| f.seek(SeekFrom::Start(file.data_set_offset)).map(|_| f)) {
            Ok(f) => BufReader::with_capacity(1 << 20, f),
            Err(e) => return Ok(Err(format!("cannot read: {e}"))),
        };
    let id = link.message_id();
    let request = Request {
        affected_sop_instance_uid: Some(&file.sop_instance_uid),
        has_data_set: true,
        ..Request::new(command_field::C_STORE_RQ, id, &file.sop_class_uid)
    };
    link.send(context, &request, Some(&mut reader))?;
    let answer = link.receive()?;
    if answer.command.message_id != id {
        return Err(link.protocol(format!("answered message {} while {id} was waiting", answer.command.message_id)));
    }
    Ok(match answer.command.status {
        Some(code) if code == status::SUCCESS || status::is_warning(code) => Ok(code),
        code => Err(format!(
            "status 0x{:04X}{}",
            code.unwrap_or(0xFFFF),
            answer.command.error_comment.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
        )),
    })
}

/// The level of a query or retrieve (Query/Retrieve Level, 0008,0052).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryLevel {
    /// Patients (Patient Root information model).
    Patient,
    /// Studies (Study Root).
    Study,
    /// Series of a study (Study Root).
    Series,
    /// Instances of a series (Study Root).
    Image,
}

impl QueryLevel {
    /// The level's code string.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Patient => "PATIENT",
            Self::Study => "STUDY",
            Self::Series => "SERIES",
            Self::Image => "IMAGE",
        }
    }

    /// The keys a query at this level asks back, with their keywords.
    fn return_keys(self) -> &'static [(Tag, VR, &'static str)] {
        match self {
            Self::Patient => &[
                (tags::PATIENT_NAME, VR::PN, "PatientName"),
                (tags::PATIENT_ID, VR::LO, "PatientID"),
                (tags::PATIENT_BIRTH_DATE, VR::DA, "PatientBirthDate"),
                (tags::PATIENT_SEX, VR::CS, "PatientSex"),
                (tags::NUMBER_OF_PATIENT_RELATED_STUDIES, VR::IS, "NumberOfPatientRelatedStudies"),
            ],
            Self::Study => &[
                (tags::STUDY_DATE, VR::DA, "StudyDate"),
                (tags::STUDY_TIME, VR::TM, "StudyTime"),
                (tags::ACCESSION_NUMBER, VR::SH, "AccessionNumber"),
                (tags::MODALITIES_IN_STUDY, VR::CS, "ModalitiesInStudy"),
                (tags::PATIENT_NAME, VR::PN, "PatientName"),
                (tags::PATIENT_ID, VR::LO, "PatientID"),
                (tags::STUDY_INSTANCE_UID, VR::UI, "StudyInstanceUID"),
                (tags::STUDY_ID, VR::SH, "StudyID"),
                (tags::STUDY_DESCRIPTION, VR::LO, "StudyDescription"),
                (tags::NUMBER_OF_STUDY_RELATED_SERIES, VR::IS, "NumberOfStudyRelatedSeries"),
                (tags::NUMBER_OF_STUDY_RELATED_INSTANCES, VR::IS, "NumberOfStudyRelatedInstances"),
            ],
            Self::Series => &[
                (tags::MODALITY, VR::CS, "Modality"),
                (tags::SERIES_DESCRIPTION, VR::LO, "SeriesDescription"),
                (tags::STUDY_INSTANCE_UID, VR::UI, "StudyInstanceUID"),
                (tags::SERIES_INSTANCE_UID, VR::UI, "SeriesInstanceUID"),
                (tags::SERIES_NUMBER, VR::IS, "SeriesNumber"),
                (tags::NUMBER_OF_SERIES_RELATED_INSTANCES, VR::IS, "NumberOfSeriesRelatedInstances"),
            ],
            Self::Image => &[
                (tags::SOP_CLASS_UID, VR::UI, "SOPClassUID"),
                (tags::SOP_INSTANCE_UID, VR::UI, "SOPInstanceUID"),
                (tags::STUDY_INSTANCE_UID, VR::UI, "StudyInstanceUID"),
                (tags::SERIES_INSTANCE_UID, VR::UI, "SeriesInstanceUID"),
                (tags::INSTANCE_NUMBER, VR::IS, "InstanceNumber"),
                (tags::NUMBER_OF_FRAMES, VR::IS, "NumberOfFrames"),
            ],
        }
    }

    fn find_class(self) -> &'static str {
        if self == Self::Patient { sop_class::PATIENT_ROOT_FIND } else { sop_class::STUDY_ROOT_FIND }
    }

    fn move_class(self) -> &'static str {
        if self == Self::Patient { sop_class::PATIENT_ROOT_MOVE } else { sop_class::STUDY_ROOT_MOVE }
    }
}

impl FromStr for QueryLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "patient" => Ok(Self::Patient),
            "study" => Ok(Self::Study),
            "series" => Ok(Self::Series),
            "image" | "instance" => Ok(Self::Image),
            _ => Err(format!("{s:?} is not a query level (patient, study, series, image)")),
        }
    }
}

/// A matching key a query can be narrowed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKey {
    /// Patient ID (0010,0020).
    PatientId,
    /// Patient's Name (0010,0010).
    PatientName,
    /// Study Instance UID (0020,000D).
    StudyInstanceUid,
    /// Series Instance UID (0020,000E).
    SeriesInstanceUid,
    /// Study Date (0008,0020), a date or a range.
    StudyDate,
    /// Accession Number (0008,0050).
    AccessionNumber,
    /// Modality (0008,0060) at the series level; Modalities in Study (0008,0061) above.
    Modality,
}

/// A query: its level and matching keys; the level's return keys are added when encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The level.
    pub level: QueryLevel,
    /// Matching keys: tag, VR and value (wildcards `*` and `?` where the VR allows them).
    pub keys: Vec<(Tag, VR, String)>,
}

impl Query {
    /// A query at `level` matching everything.
    #[must_use]
    pub fn new(level: QueryLevel) -> Self {
        Self { level, keys: Vec::new() }
    }

    /// Adds (or replaces) a matching key.
    #[must_use]
    pub fn matching(mut self, tag: Tag, vr: VR, value: &str) -> Self {
        self.keys.retain(|(t, _, _)| *t != tag);
        self.keys.push((tag, vr, value.to_owned()));
        self
    }

    /// Adds (or replaces) one of the common matching keys.
    #[must_use]
    pub fn with(self, key: MatchKey, value: &str) -> Self {
        let (tag, vr) = match key {
            MatchKey::PatientId => (tags::PATIENT_ID, VR::LO),
            MatchKey::PatientName => (tags::PATIENT_NAME, VR::PN),
            MatchKey::StudyInstanceUid => (tags::STUDY_INSTANCE_UID, VR::UI),
            MatchKey::SeriesInstanceUid => (tags::SERIES_INSTANCE_UID, VR::UI),
            MatchKey::StudyDate => (tags::STUDY_DATE, VR::DA),
            MatchKey::AccessionNumber => (tags::ACCESSION_NUMBER, VR::SH),
            MatchKey::Modality if matches!(self.level, QueryLevel::Patient | QueryLevel::Study) => {
                (tags::MODALITIES_IN_STUDY, VR::CS)
            }
            MatchKey::Modality => (tags::MODALITY, VR::CS),
        };
        self.matching(tag, vr, value)
    }

    /// A match's values for this level's return keys, as (keyword, value), in key order; an
    /// absent or empty key gives an empty value.
    #[must_use]
    pub fn fields(&self, found: &InMemDicomObject) -> Vec<(&'static str, String)> {
        self.level
            .return_keys()
            .iter()
            .map(|(tag, _, keyword)| {
                let value = found
                    .element(*tag)
                    .ok()
                    .and_then(|e| e.to_str().ok())
                    .map(|v| dimse::trim_padding(&v).to_owned())
                    .unwrap_or_default();
                (*keyword, value)
            })
            .collect()
    }

    fn key(&self, tag: Tag) -> Option<&str> {
        self.keys.iter().find(|(t, _, _)| *t == tag).map(|(_, _, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// The unique keys a hierarchical query below the study level needs (PS3.4 C.4.1.3.1).
    fn check_hierarchy(&self) -> Result<(), ScuError> {
        let needs = |tag: Tag, name: &str| {
            if self.key(tag).is_some_and(|v| !v.contains(['*', '?', '\\'])) {
                Ok(())
            } else {
                Err(ScuError::Query(format!(
                    "a {} query needs one {name} (hierarchical query/retrieve)",
                    self.level.code().to_ascii_lowercase()
                )))
            }
        };
        match self.level {
            QueryLevel::Patient | QueryLevel::Study => Ok(()),
            QueryLevel::Series => needs(tags::STUDY_INSTANCE_UID, "Study Instance UID"),
            QueryLevel::Image => needs(tags::STUDY_INSTANCE_UID, "Study Instance UID")
                .and_then(|()| needs(tags::SERIES_INSTANCE_UID, "Series Instance UID")),
        }
    }

    /// The identifier of a C-FIND: level, return keys (empty) and matching keys.
    #[must_use]
    pub fn find_identifier(&self) -> InMemDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        for (tag, vr, _) in self.level.return_keys() {
            obj.put(DataElement::new(*tag, *vr, PrimitiveValue::Empty));
        }
        self.put_keys(&mut obj);
        obj
    }

    /// The identifier of a C-MOVE: level and matching (unique) keys only.
    #[must_use]
    pub fn move_identifier(&self) -> InMemDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        self.put_keys(&mut obj);
        obj
    }

    fn put_keys(&self, obj: &mut InMemDicomObject) {
        obj.put(DataElement::new(tags::QUERY_RETRIEVE_LEVEL, VR::CS, PrimitiveValue::from(self.level.code())));
        for (tag, vr, value) in &self.keys {
            obj.put(DataElement::new(*tag, *vr, PrimitiveValue::from(value.as_str())));
        }
    }
}

fn encode_identifier(obj: &InMemDicomObject, transfer_syntax: &str) -> Result<Vec<u8>, ScuError> {
    let ts = TransferSyntaxRegistry
        .get(transfer_syntax)
        .ok_or_else(|| ScuError::Query(format!("unknown transfer syntax {transfer_syntax}")))?;
    let mut bytes = Vec::new();
    obj.write_dataset_with_ts(&mut bytes, ts).map_err(|e| ScuError::Query(format!("encoding the identifier: {e}")))?;
    Ok(bytes)
}

/// Runs a C-FIND and returns every match, in the order the peer sent them.
pub fn find(config: &ScuConfig, peer: &RemoteAe, query: &Query) -> Result<Vec<InMemDicomObject>, ScuError> {
    query.check_hierarchy()?;
    let class = query.level.find_class();
    let mut link = Link::open(config, peer, &[(class, vec![EXPLICIT_LE, IMPLICIT_LE])])?;
    let (context, transfer_syntax) = link.required_context(class)?;
    let identifier = encode_identifier(&query.find_identifier(), &transfer_syntax)?;
    let id = link.message_id();
    let request = Request { has_data_set: true, ..Request::new(command_field::C_FIND_RQ, id, class) };
    link.send(context, &request, Some(&mut identifier.as_slice()))?;
    let ts = TransferSyntaxRegistry
        .get(&transfer_syntax)
        .ok_or_else(|| ScuError::Query(format!("unknown transfer syntax {transfer_syntax}")))?;
    let mut matches = Vec::new();
    loop {
        let answer = link.receive()?;
        match answer.command.status {
            Some(code) if status::is_pending(code) => {
                let data = answer.data.ok_or_else(|| link.protocol("a pending C-FIND response without a match"))?;
                let obj = InMemDicomObject::read_dataset_with_ts(data.as_slice(), ts)
                    .map_err(|e| link.protocol(format!("match {} does not parse: {e}", matches.len() + 1)))?;
                matches.push(obj);
            }
            Some(status::SUCCESS) => break,
            _ => return Err(link.status_error("C-FIND", &answer.command)),
        }
    }
    link.release();
    Ok(matches)
}

/// How a C-MOVE ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoveOutcome {
    /// The final status (success, or a warning when some sub-operations failed).
    pub status: u16,
    /// Instances moved.
    pub completed: u16,
    /// Instances that failed.
    pub failed: u16,
    /// Instances moved with a warning.
    pub warning: u16,
}

/// Asks `peer` to send what `query` names (its unique keys) to `destination_ae_title`, which
/// the peer must know the address of; `progress` sees each pending response's counts.
pub fn move_to(
    config: &ScuConfig,
    peer: &RemoteAe,
    query: &Query,
    destination_ae_title: &str,
    mut progress: impl FnMut(&dimse::SubOperations),
) -> Result<MoveOutcome, ScuError> {
    if !is_valid_ae_title(destination_ae_title) {
        return Err(ScuError::BadAeTitle(destination_ae_title.to_owned()));
    }
    query.check_hierarchy()?;
    if query.level == QueryLevel::Study && query.key(tags::STUDY_INSTANCE_UID).is_none() {
        return Err(ScuError::Query("a study retrieve needs the Study Instance UID".into()));
    }
    let class = query.level.move_class();
    let mut link = Link::open(config, peer, &[(class, vec![EXPLICIT_LE, IMPLICIT_LE])])?;
    let (context, transfer_syntax) = link.required_context(class)?;
    let identifier = encode_identifier(&query.move_identifier(), &transfer_syntax)?;
    let id = link.message_id();
    let request = Request {
        move_destination: Some(destination_ae_title),
        has_data_set: true,
        ..Request::new(command_field::C_MOVE_RQ, id, class)
    };
    link.send(context, &request, Some(&mut identifier.as_slice()))?;
    loop {
        let answer = link.receive()?;
        let subs = answer.command.sub_operations;
        match answer.command.status {
            Some(code) if status::is_pending(code) => progress(&subs),
            Some(code) if code == status::SUCCESS || status::is_warning(code) => {
                link.release();
                return Ok(MoveOutcome {
                    status: code,
                    completed: subs.completed.unwrap_or(0),
                    failed: subs.failed.unwrap_or(0),
                    warning: subs.warning.unwrap_or(0),
                });
            }
            _ => return Err(link.status_error("C-MOVE", &answer.command)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn remote_aes_parse_and_bad_ones_are_named() {
        let ae: RemoteAe = "ORTHANC@127.0.0.1:4242".parse().unwrap();
        assert_eq!(ae.ae_title, "ORTHANC");
        assert_eq!(ae.address, "127.0.0.1:4242");
        assert_eq!(ae.to_string(), "ORTHANC@127.0.0.1:4242");
        assert!("[::1]:104".parse::<RemoteAe>().is_err(), "no AE title");
        assert!("PACS@host".parse::<RemoteAe>().unwrap_err().contains("host:port"));
        assert!("PACS@host:0".parse::<RemoteAe>().is_err());
        assert!("PACS@host:70000".parse::<RemoteAe>().is_err());
        assert!("A_TITLE_LONGER_THAN_16@h:1".parse::<RemoteAe>().unwrap_err().contains("AE title"));
    }

    #[test]
    fn queries_below_the_study_need_the_unique_keys_above() {
        let series = Query::new(QueryLevel::Series);
        assert!(matches!(series.check_hierarchy(), Err(ScuError::Query(m)) if m.contains("Study Instance UID")));
        let wildcard = series.clone().matching(tags::STUDY_INSTANCE_UID, VR::UI, "1.2*");
        assert!(wildcard.check_hierarchy().is_err(), "a wildcard is not a unique key");
        let ok = series.matching(tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3");
        assert!(ok.check_hierarchy().is_ok());
        let image = Query::new(QueryLevel::Image).matching(tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3");
        assert!(image.check_hierarchy().is_err(), "an image query needs the series too");
    }

    #[test]
    fn a_find_identifier_has_the_level_the_return_keys_and_the_matching_keys() {
        let q = Query::new(QueryLevel::Study).matching(tags::PATIENT_ID, VR::LO, "SIM*");
        let obj = q.find_identifier();
        assert_eq!(obj.element(tags::QUERY_RETRIEVE_LEVEL).unwrap().to_str().unwrap(), "STUDY");
        assert_eq!(obj.element(tags::PATIENT_ID).unwrap().to_str().unwrap(), "SIM*");
        assert!(obj.element(tags::STUDY_INSTANCE_UID).unwrap().to_str().unwrap().is_empty(), "asked back, empty");
        let moved = Query::new(QueryLevel::Study).matching(tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3").move_identifier();
        assert!(moved.element(tags::STUDY_DATE).is_err(), "a move identifier carries only unique keys");
        // The identifier encodes and reads back in explicit VR little endian.
        let bytes = encode_identifier(&obj, EXPLICIT_LE).unwrap();
        let ts = TransferSyntaxRegistry.get(EXPLICIT_LE).unwrap();
        let back = InMemDicomObject::read_dataset_with_ts(bytes.as_slice(), ts).unwrap();
        assert_eq!(back.element(tags::PATIENT_ID).unwrap().to_str().unwrap(), "SIM*");
    }

    #[test]
    fn a_file_that_is_not_part_10_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.dcm");
        std::fs::write(&path, b"hello").unwrap();
        assert!(SendableFile::open(&path).unwrap_err().contains("preamble"));
        std::fs::write(&path, vec![0u8; 200]).unwrap();
        assert!(SendableFile::open(&path).unwrap_err().contains("DICM"));
    }

    #[test]
    fn an_unreachable_peer_is_a_clear_error() {
        // A port nothing listens on: bind one, note it, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let peer: RemoteAe = format!("NOBODY@127.0.0.1:{port}").parse().unwrap();
        let mut config = ScuConfig::new("CSNAV");
        config.timeout = Duration::from_secs(2);
        let e = echo(&config, &peer).unwrap_err();
        assert!(matches!(e, ScuError::Associate { .. }), "{e}");
        assert!(e.to_string().contains("NOBODY@127.0.0.1"), "{e}");
    }
}
