//! The storage SCP: accepts associations from the angiography system (and anyone on the
//! allow-list), answers C-ECHO, and stores each C-STORE'd XA or secondary-capture instance
//! byte for byte as received (the data set in the negotiated transfer syntax behind a file
//! meta group), atomically. One thread per association, up to a limit.

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use dicom_ul::association::Association;
use dicom_ul::association::server::AccessControl;
use dicom_ul::pdu::{
    AssociationRJServiceUserReason, PDataValue, PDataValueType, PresentationContextNegotiated,
    PresentationContextResultReason, UserIdentity,
};
use dicom_ul::{Pdu, ServerAssociation, ServerAssociationOptions};

use crate::dimse::{self, Command, command_field, status};
use crate::sop_class;
use crate::storage::{self, MetaInfo, PartFile, StorageError};
use venogram::error_chain;

/// How the SCP is set up.
#[derive(Debug, Clone)]
pub struct StoreScpConfig {
    /// This node's AE title; associations must call it.
    pub ae_title: String,
    /// Calling AE titles allowed to associate; `None` lets anyone in.
    pub allowed_calling_ae_titles: Option<Vec<String>>,
    /// Where received instances are stored.
    pub store_dir: PathBuf,
    /// The Implementation Class UID written into stored files' meta groups.
    pub implementation_class_uid: String,
    /// Associations served at once; more are rejected.
    pub max_associations: usize,
    /// How long a peer may stay silent before its association is dropped.
    pub idle_timeout: Duration,
    /// The largest PDU this node accepts, bytes.
    pub max_pdu_length: u32,
}

impl StoreScpConfig {
    /// A configuration with csnav's defaults: 32 associations, 60 s idle timeout, 256 KiB PDUs.
    #[must_use]
    pub fn new(ae_title: &str, store_dir: &Path, implementation_class_uid: &str) -> Self {
        Self {
            ae_title: ae_title.to_owned(),
            allowed_calling_ae_titles: None,
            store_dir: store_dir.to_owned(),
            implementation_class_uid: implementation_class_uid.to_owned(),
            max_associations: 32,
            idle_timeout: Duration::from_mins(1),
            max_pdu_length: 262_144,
        }
    }
}

/// Why the SCP could not start.
#[derive(Debug, thiserror::Error)]
pub enum ScpError {
    /// The AE title is not 1-16 printable characters without backslash.
    #[error("the AE title {0:?} is not 1-16 printable characters without a backslash")]
    BadAeTitle(String),
    /// The listening socket could not be opened.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: String,
        /// The error.
        source: std::io::Error,
    },
    /// The store folder is not usable.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// One instance stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInstance {
    /// The file, in the store folder.
    pub path: PathBuf,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// The transfer syntax it was received (and is stored) in.
    pub transfer_syntax_uid: String,
    /// Who sent it.
    pub calling_ae_title: String,
    /// Data-set bytes received.
    pub data_set_bytes: u64,
}

/// What the SCP reports as it works.
#[derive(Debug, Clone)]
pub enum ScpEvent {
    /// An association was accepted.
    Associated {
        /// The peer's address.
        peer: SocketAddr,
        /// Its calling AE title.
        calling_ae_title: String,
    },
    /// An association request was refused or could not be negotiated.
    Rejected {
        /// The peer's address.
        peer: SocketAddr,
        /// Why, in words.
        reason: String,
    },
    /// A C-ECHO was answered.
    Echo {
        /// Who asked.
        calling_ae_title: String,
    },
    /// An instance was stored.
    Stored(StoredInstance),
    /// A C-STORE was answered with a failure status and nothing was stored.
    StoreFailed {
        /// Who sent it.
        calling_ae_title: String,
        /// The SOP Instance UID in the request, if any.
        sop_instance_uid: Option<String>,
        /// The status sent back.
        status: u16,
        /// Why, in words.
        reason: String,
    },
    /// An association ended: released, or dropped with the reason (nothing half-received is
    /// kept).
    Ended {
        /// Its calling AE title.
        calling_ae_title: String,
        /// `None` when released normally.
        error: Option<String>,
    },
}

/// The allow-list and the association limit, checked on every association request.
struct Gate {
    allowed: Option<Vec<String>>,
    active: Arc<AtomicUsize>,
    max: usize,
}

impl AccessControl for Gate {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        if called_ae_title.trim() != this_ae_title.trim() {
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        if let Some(allowed) = &self.allowed
            && !allowed.iter().any(|a| a.trim() == calling_ae_title.trim())
        {
            return Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized);
        }
        if self.active.load(Ordering::SeqCst) > self.max {
            return Err(AssociationRJServiceUserReason::NoReasonGiven);
        }
        Ok(())
    }
}

/// Whether `title` can be an AE title (PS3.5: at most 16 characters of the default repertoire,
/// no backslash or control characters, not all spaces).
#[must_use]
pub fn is_valid_ae_title(title: &str) -> bool {
    !title.trim().is_empty() && title.len() <= 16 && title.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'\\')
}

/// A listening storage SCP.
pub struct StoreScp {
    listener: TcpListener,
    config: Arc<StoreScpConfig>,
    active: Arc<AtomicUsize>,
}

impl StoreScp {
    /// Opens the store (removing part files a killed run left) and listens on `address`.
    pub fn bind(address: impl ToSocketAddrs + std::fmt::Debug, config: StoreScpConfig) -> Result<Self, ScpError> {
        if !is_valid_ae_title(&config.ae_title) {
            return Err(ScpError::BadAeTitle(config.ae_title));
        }
        if let Some(bad) = config.allowed_calling_ae_titles.iter().flatten().find(|t| !is_valid_ae_title(t)) {
            return Err(ScpError::BadAeTitle(bad.clone()));
        }
        std::fs::create_dir_all(&config.store_dir).map_err(|source| StorageError::Io {
            what: "creating the store",
            path: config.store_dir.clone(),
            source,
        })?;
        let stale = storage::clean_incoming(&config.store_dir)?;
        if stale > 0 {
            tracing::warn!("removed {stale} unfinished part files left by an earlier run");
        }
        let listener =
            TcpListener::bind(&address).map_err(|source| ScpError::Bind { address: format!("{address:?}"), source })?;
        Ok(Self { listener, config: Arc::new(config), active: Arc::new(AtomicUsize::new(0)) })
    }

    /// The address it listens on (the port when bound to port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves associations until the listener fails, each on its own thread, reporting to
    /// `events`.
    pub fn serve(self, events: impl Fn(ScpEvent) + Send + Sync + 'static) -> std::io::Result<()> {
        let events = Arc::new(events);
        for stream in self.listener.incoming() {
            let stream = match stream {
                Ok(s) => s,
                // A connection that failed before it was accepted is the peer's problem.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
                Err(e) => return Err(e),
            };
            let (config, active, events) = (Arc::clone(&self.config), Arc::clone(&self.active), Arc::clone(&events));
            active.fetch_add(1, Ordering::SeqCst);
            let spawned = std::thread::Builder::new().name("csnav-scp-association".into()).spawn({
                let active = Arc::clone(&active);
                move || {
                    serve_connection(stream, &config, &active, &*events);
                    active.fetch_sub(1, Ordering::SeqCst);
                }
            });
            if let Err(e) = spawned {
                active.fetch_sub(1, Ordering::SeqCst);
                tracing::error!("cannot start a thread for an association: {e}");
            }
        }
        Ok(())
    }
}

/// The presentation contexts this SCP accepts: verification and the X-ray angiography and
/// secondary-capture storage classes, in every transfer syntax csnav can store and decode.
fn options(
    config: &StoreScpConfig,
    active: &Arc<AtomicUsize>,
) -> ServerAssociationOptions<'static, Gate, dicom_ul::association::server::DefaultNegotiation> {
    let mut o = ServerAssociationOptions::new()
        .ae_access_control(Gate {
            allowed: config.allowed_calling_ae_titles.clone(),
            active: Arc::clone(active),
            max: config.max_associations,
        })
        .ae_title(config.ae_title.clone())
        .max_pdu_length(config.max_pdu_length)
        .read_timeout(config.idle_timeout)
        .write_timeout(config.idle_timeout);
    for uid in sop_class::ACCEPTED {
        o = o.with_abstract_syntax(*uid);
    }
    // The transfer syntaxes venogram decodes: every stored run can be segmented.
    for (uid, _) in venogram::transfer_syntax::SUPPORTED {
        o = o.with_transfer_syntax(uid);
    }
    o
}

fn serve_connection(stream: TcpStream, config: &StoreScpConfig, active: &Arc<AtomicUsize>, events: &dyn Fn(ScpEvent)) {
    let Ok(peer) = stream.peer_addr() else { return };
    let association = match options(config, active).establish(stream) {
        Ok(a) => a,
        Err(e) => {
            events(ScpEvent::Rejected { peer, reason: error_chain(&e) });
            return;
        }
    };
    let calling_ae_title = association.peer_ae_title().trim().to_owned();
    events(ScpEvent::Associated { peer, calling_ae_title: calling_ae_title.clone() });
    let error = Session { association, config, calling_ae_title: calling_ae_title.clone(), events }.run().err();
    events(ScpEvent::Ended { calling_ae_title, error });
}

/// A C-STORE whose data set is arriving.
struct PendingStore {
    presentation_context_id: u8,
    message_id: u16,
    sop_class_uid: String,
    sop_instance_uid: String,
    transfer_syntax_uid: String,
    /// Where the bytes go; `None` when the request is already refused and its data is drained.
    part: Option<PartFile>,
    /// The failure to answer with once the data set is in, when refused.
    refusal: Option<(u16, String)>,
}

/// One association's DIMSE exchange.
struct Session<'a> {
    association: ServerAssociation<TcpStream>,
    config: &'a StoreScpConfig,
    calling_ae_title: String,
    events: &'a dyn Fn(ScpEvent),
}

impl Session<'_> {
    /// Serves until the peer releases (Ok) or the association breaks (the reason).
    fn run(mut self) -> Result<(), String> {
        let mut command = Vec::new();
        let mut pending: Option<PendingStore> = None;
        loop {
            let pdu = self.association.receive().map_err(|e| {
                format!("{}{}", error_chain(&e), if pending.is_some() { " (mid-transfer: nothing stored)" } else { "" })
            })?;
            match pdu {
                Pdu::PData { data } => {
                    for pdv in data {
                        if let Err(reason) = self.on_pdv(&pdv, &mut command, &mut pending) {
                            self.abort();
                            return Err(reason);
                        }
                    }
                }
                Pdu::ReleaseRQ => {
                    let _ = self.association.send(&Pdu::ReleaseRP);
                    return if pending.is_some() {
                        Err("released mid-transfer: nothing stored".into())
                    } else {
                        Ok(())
                    };
                }
                Pdu::AbortRQ { source } => return Err(format!("aborted by the peer ({source:?})")),
                other => {
                    self.abort();
                    return Err(format!("unexpected PDU {}", other.short_description()));
                }
            }
        }
    }

    /// Ends the association on a protocol error (A-ABORT from the service provider); the
    /// socket may already be gone, so a failure to send is not news.
    fn abort(&mut self) {
        let _ = self.association.send(&Pdu::AbortRQ {
            source: dicom_ul::pdu::AbortRQSource::ServiceProvider(
                dicom_ul::pdu::AbortRQServiceProviderReason::UnexpectedPdu,
            ),
        });
    }

    fn context(&self, id: u8) -> Option<&PresentationContextNegotiated> {
        self.association
            .presentation_contexts()
            .iter()
            .find(|pc| pc.id == id && pc.reason == PresentationContextResultReason::Acceptance)
    }

    /// One presentation data value: a command fragment or a data fragment. An error is a
    /// protocol violation that ends the association.
    fn on_pdv(
        &mut self,
        pdv: &PDataValue,
        command: &mut Vec<u8>,
        pending: &mut Option<PendingStore>,
    ) -> Result<(), String> {
        let Some(context) = self.context(pdv.presentation_context_id).cloned() else {
            return Err(format!("data on presentation context {} that was not accepted", pdv.presentation_context_id));
        };
        match pdv.value_type {
            PDataValueType::Command => {
                if pending.is_some() {
                    return Err("a command arrived before the previous C-STORE's data set ended".into());
                }
                command.extend_from_slice(&pdv.data);
                if pdv.is_last {
                    let parsed = Command::parse(command).map_err(|e| e.to_string())?;
                    command.clear();
                    *pending = self.on_command(&parsed, &context)?;
                }
                Ok(())
            }
            PDataValueType::Data => {
                let Some(store) = pending.as_mut() else {
                    return Err("a data set arrived without a C-STORE request".into());
                };
                if store.presentation_context_id != pdv.presentation_context_id {
                    return Err("the data set switched presentation context mid-transfer".into());
                }
                if let Some(part) = store.part.as_mut()
                    && let Err(e) = part.write(&pdv.data)
                {
                    store.part = None;
                    store.refusal = Some((status::OUT_OF_RESOURCES, e.to_string()));
                }
                if pdv.is_last
                    && let Some(store) = pending.take()
                {
                    self.finish_store(store)?;
                }
                Ok(())
            }
        }
    }

    /// A complete command: C-ECHO answered; C-STORE set up (its data set follows); anything
    /// else answered as an unrecognized operation.
    fn on_command(
        &mut self,
        c: &Command,
        context: &PresentationContextNegotiated,
    ) -> Result<Option<PendingStore>, String> {
        match c.field {
            command_field::C_ECHO_RQ => {
                self.respond(
                    context.id,
                    &dimse::Response {
                        request_field: c.field,
                        message_id: c.message_id,
                        affected_sop_class_uid: Some(sop_class::VERIFICATION),
                        affected_sop_instance_uid: None,
                        status: status::SUCCESS,
                        error_comment: None,
                    },
                )?;
                (self.events)(ScpEvent::Echo { calling_ae_title: self.calling_ae_title.clone() });
                Ok(None)
            }
            command_field::C_STORE_RQ => {
                if !c.has_data_set {
                    self.respond(
                        context.id,
                        &dimse::Response {
                            request_field: c.field,
                            message_id: c.message_id,
                            affected_sop_class_uid: c.affected_sop_class_uid.as_deref(),
                            affected_sop_instance_uid: c.affected_sop_instance_uid.as_deref(),
                            status: status::CANNOT_UNDERSTAND,
                            error_comment: Some("C-STORE without a data set"),
                        },
                    )?;
                    return Ok(None);
                }
                let sop_class_uid = c.affected_sop_class_uid.clone().unwrap_or_default();
                let sop_instance_uid = c.affected_sop_instance_uid.clone().unwrap_or_default();
                let transfer_syntax_uid = dimse::trim_padding(&context.transfer_syntax).to_owned();
                let refusal = if sop_class_uid != dimse::trim_padding(&context.abstract_syntax) {
                    Some((
                        status::SOP_CLASS_NOT_SUPPORTED,
                        format!(
                            "SOP class {sop_class_uid} sent on a {} context",
                            dimse::trim_padding(&context.abstract_syntax)
                        ),
                    ))
                } else if !storage::is_valid_uid(&sop_instance_uid) {
                    Some((
                        status::CANNOT_UNDERSTAND,
                        format!("Affected SOP Instance UID {sop_instance_uid:?} is not a UID"),
                    ))
                } else {
                    None
                };
                let (part, refusal) = if refusal.is_some() {
                    (None, refusal)
                } else {
                    let meta = MetaInfo {
                        sop_class_uid: &sop_class_uid,
                        sop_instance_uid: &sop_instance_uid,
                        transfer_syntax_uid: &transfer_syntax_uid,
                        implementation_class_uid: &self.config.implementation_class_uid,
                        source_ae_title: &self.calling_ae_title,
                    };
                    match PartFile::create(&self.config.store_dir, &meta) {
                        Ok(p) => (Some(p), None),
                        Err(e) => (None, Some((status::OUT_OF_RESOURCES, e.to_string()))),
                    }
                };
                Ok(Some(PendingStore {
                    presentation_context_id: context.id,
                    message_id: c.message_id,
                    sop_class_uid,
                    sop_instance_uid,
                    transfer_syntax_uid,
                    part,
                    refusal,
                }))
            }
            field if field & command_field::RESPONSE_BIT == 0 => {
                self.respond(
                    context.id,
                    &dimse::Response {
                        request_field: field,
                        message_id: c.message_id,
                        affected_sop_class_uid: c.affected_sop_class_uid.as_deref(),
                        affected_sop_instance_uid: None,
                        status: status::UNRECOGNIZED_OPERATION,
                        error_comment: Some("this SCP serves C-ECHO and C-STORE only"),
                    },
                )?;
                if c.has_data_set {
                    return Err(format!("unsupported command 0x{field:04x} with a data set"));
                }
                Ok(None)
            }
            field => Err(format!("a response (0x{field:04x}) sent to an SCP")),
        }
    }

    /// The data set is in: check it, move it into place, answer.
    fn finish_store(&mut self, store: PendingStore) -> Result<(), String> {
        let PendingStore {
            presentation_context_id,
            message_id,
            sop_class_uid,
            sop_instance_uid,
            transfer_syntax_uid,
            part,
            refusal,
        } = store;
        let outcome = match (part, refusal) {
            (_, Some(refusal)) => Err(refusal),
            (None, None) => Err((status::OUT_OF_RESOURCES, "no file to store into".to_owned())),
            (Some(mut part), None) => {
                let bytes = part.data_set_bytes();
                part.finish_writing()
                    .map_err(|e| (status::OUT_OF_RESOURCES, e.to_string()))
                    .and_then(|()| check_stored(part.part_path(), &sop_class_uid, &sop_instance_uid))
                    .and_then(|()| {
                        part.commit(&self.config.store_dir, &format!("{sop_instance_uid}.dcm"))
                            .map_err(|e| (status::OUT_OF_RESOURCES, e.to_string()))
                    })
                    .map(|path| (path, bytes))
            }
        };
        let (code, comment) = match &outcome {
            Ok(_) => (status::SUCCESS, None),
            Err((code, reason)) => (*code, Some(reason.as_str())),
        };
        self.respond(
            presentation_context_id,
            &dimse::Response {
                request_field: command_field::C_STORE_RQ,
                message_id,
                affected_sop_class_uid: Some(&sop_class_uid),
                affected_sop_instance_uid: Some(&sop_instance_uid),
                status: code,
                error_comment: comment,
            },
        )?;
        (self.events)(match outcome {
            Ok((path, data_set_bytes)) => ScpEvent::Stored(StoredInstance {
                path,
                sop_class_uid,
                sop_instance_uid,
                transfer_syntax_uid,
                calling_ae_title: self.calling_ae_title.clone(),
                data_set_bytes,
            }),
            Err((status, reason)) => ScpEvent::StoreFailed {
                calling_ae_title: self.calling_ae_title.clone(),
                sop_instance_uid: Some(sop_instance_uid),
                status,
                reason,
            },
        });
        Ok(())
    }

    /// Sends `response` on the presentation context its request came on.
    fn respond(&mut self, presentation_context_id: u8, response: &dimse::Response<'_>) -> Result<(), String> {
        let data = dimse::response(response).map_err(|e| e.to_string())?;
        self.association
            .send(&dimse::command_pdu(presentation_context_id, data))
            .map_err(|e| format!("sending the response: {}", error_chain(&e)))
    }
}

/// Reads the stored file back up to its pixel data: it must parse in its transfer syntax and
/// name the SOP class and instance its request did.
fn check_stored(path: &Path, sop_class_uid: &str, sop_instance_uid: &str) -> Result<(), (u16, String)> {
    let obj = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| (status::CANNOT_UNDERSTAND, format!("the data set does not parse: {e}")))?;
    let uid_of = |tag| {
        obj.element(tag)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| dimse::trim_padding(&s).to_owned())
            .unwrap_or_default()
    };
    let (class, instance) = (uid_of(tags::SOP_CLASS_UID), uid_of(tags::SOP_INSTANCE_UID));
    if class != sop_class_uid || instance != sop_instance_uid {
        return Err((
            status::DATA_SET_DOES_NOT_MATCH,
            format!("the data set is {class} / {instance}, the request said {sop_class_uid} / {sop_instance_uid}"),
        ));
    }
    Ok(())
}
