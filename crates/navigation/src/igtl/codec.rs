//! OpenIGTLink framing, sans-IO: the 58-byte header (`igtl_header.h`), the version-2
//! extended header and metadata (`header.md`, protocol v3), the CRC-64 over the body, and a
//! [`Decoder`] that turns a byte stream into messages without owning a socket or a clock.
//!
//! Receiving follows the reference library: the content of a version-2 body starts after
//! `extended_header_size` bytes and the metadata is found from the end of the body; a type
//! this crate does not model is kept as opaque bytes (skipped by its body size, never a
//! reason to drop the connection). A body larger than the configured limit is refused
//! before any of it is buffered (a header claiming 4 GB must not allocate 4 GB).

use super::crc64::crc64;
use super::message::{Body, DeviceName, FixedName};
use super::timestamp::Timestamp;
use super::{IgtlError, MessageError};

/// Bytes of the header.
pub const HEADER_SIZE: usize = 58;
/// Bytes of the version-2 extended header as written by the reference library and pyigtl.
pub const EXTENDED_HEADER_SIZE: usize = 12;
/// Default largest body accepted, bytes (64 MiB: a 1024x1024x16-bit image fits many times).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Header version: 1 (protocol v1/v2) or 2 (protocol v3, extended header and metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderVersion {
    /// Version 1: the body is the content.
    #[default]
    V1,
    /// Version 2: extended header, content, metadata.
    V2,
}

impl HeaderVersion {
    fn code(self) -> u16 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }
}

/// One metadata entry of a version-2 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaEntry {
    /// Key.
    pub key: String,
    /// IANA `MIBenum` of the value's encoding (3 US-ASCII, 106 UTF-8).
    pub encoding: u16,
    /// Value.
    pub value: String,
}

/// A whole OpenIGTLink message: header fields, content and (version 2) metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Header version it was (or is to be) sent with.
    pub version: HeaderVersion,
    /// Device name: the tool, stream or image the message is about.
    pub device_name: DeviceName,
    /// Time stamp (zero = unset).
    pub timestamp: Timestamp,
    /// Content.
    pub body: Body,
    /// Version 2 only: the message id.
    pub message_id: u32,
    /// Version 2 only: metadata, in order.
    pub metadata: Vec<MetaEntry>,
}

impl Message {
    /// A version-1 message with no time stamp.
    #[must_use]
    pub fn new(device_name: DeviceName, body: Body) -> Self {
        Self {
            version: HeaderVersion::V1,
            device_name,
            timestamp: Timestamp::ZERO,
            body,
            message_id: 0,
            metadata: Vec::new(),
        }
    }

    /// The metadata value for `key`.
    #[must_use]
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|m| m.key == key).map(|m| m.value.as_str())
    }

    /// The message's bytes (header and body), with the body's CRC.
    pub fn encode(&self) -> Result<Vec<u8>, IgtlError> {
        let type_name = FixedName::<12>::new(&self.body.type_name())?;
        let mut body = Vec::with_capacity(64);
        match self.version {
            HeaderVersion::V1 => self.body.write_content(&mut body)?,
            HeaderVersion::V2 => {
                let mut meta_header = Vec::with_capacity(2 + 8 * self.metadata.len());
                let mut meta_data = Vec::new();
                let count = u16::try_from(self.metadata.len()).map_err(|_| IgtlError::TooLong {
                    what: "metadata entry count",
                    bytes: self.metadata.len(),
                    max_bytes: 65535,
                })?;
                meta_header.extend_from_slice(&count.to_be_bytes());
                for m in &self.metadata {
                    let key_len = u16::try_from(m.key.len()).map_err(|_| IgtlError::TooLong {
                        what: "metadata key",
                        bytes: m.key.len(),
                        max_bytes: 65535,
                    })?;
                    meta_header.extend_from_slice(&key_len.to_be_bytes());
                    meta_header.extend_from_slice(&m.encoding.to_be_bytes());
                    meta_header.extend_from_slice(&(m.value.len() as u32).to_be_bytes());
                    meta_data.extend_from_slice(m.key.as_bytes());
                    meta_data.extend_from_slice(m.value.as_bytes());
                }
                body.extend_from_slice(&(EXTENDED_HEADER_SIZE as u16).to_be_bytes());
                body.extend_from_slice(&(meta_header.len() as u16).to_be_bytes());
                body.extend_from_slice(&(meta_data.len() as u32).to_be_bytes());
                body.extend_from_slice(&self.message_id.to_be_bytes());
                self.body.write_content(&mut body)?;
                body.extend_from_slice(&meta_header);
                body.extend_from_slice(&meta_data);
            }
        }
        let mut out = Vec::with_capacity(HEADER_SIZE + body.len());
        out.extend_from_slice(&self.version.code().to_be_bytes());
        type_name.write(&mut out);
        self.device_name.write(&mut out);
        out.extend_from_slice(&self.timestamp.to_bits().to_be_bytes());
        out.extend_from_slice(&(body.len() as u64).to_be_bytes());
        out.extend_from_slice(&crc64(&body).to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }
}

/// The fixed header, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header version.
    pub version: HeaderVersion,
    /// Type name (up to 12 bytes).
    pub type_name: String,
    /// Device name.
    pub device_name: DeviceName,
    /// Time stamp.
    pub timestamp: Timestamp,
    /// Bytes of the body that follows.
    pub body_size: u64,
    /// CRC-64 of the body as sent.
    pub crc: u64,
}

impl Header {
    /// Parses the 58 header bytes, refusing an unknown header version or a body over
    /// `max_body_bytes` (both leave the stream unreadable: the caller must drop it).
    pub fn parse(b: &[u8; HEADER_SIZE], max_body_bytes: u64) -> Result<Self, IgtlError> {
        let be_u64 =
            |o: usize| u64::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3], b[o + 4], b[o + 5], b[o + 6], b[o + 7]]);
        let version = match u16::from_be_bytes([b[0], b[1]]) {
            1 => HeaderVersion::V1,
            2 => HeaderVersion::V2,
            other => return Err(IgtlError::UnsupportedHeaderVersion(other)),
        };
        let type_name = FixedName::<12>::read(&b[2..14]).as_str().trim_end().to_owned();
        if type_name.is_empty() {
            return Err(IgtlError::EmptyTypeName);
        }
        let body_size = be_u64(42);
        if body_size > max_body_bytes {
            return Err(IgtlError::BodyTooLarge { type_name, body_size, max_body_bytes });
        }
        Ok(Self {
            version,
            type_name,
            device_name: FixedName::read(&b[14..34]),
            timestamp: Timestamp::from_bits(be_u64(34)),
            body_size,
            crc: be_u64(50),
        })
    }
}

/// Parses a whole body against its header: CRC (when `check_crc`), extended header,
/// metadata and content.
pub fn parse_body(header: &Header, body: &[u8], check_crc: bool) -> Result<Message, MessageError> {
    let fail = |error: IgtlError| MessageError {
        type_name: header.type_name.clone(),
        device_name: header.device_name.clone(),
        error,
    };
    if check_crc {
        let actual = crc64(body);
        if actual != header.crc {
            return Err(fail(IgtlError::CrcMismatch { expected: header.crc, actual }));
        }
    }
    let (content, message_id, metadata) = match header.version {
        HeaderVersion::V1 => (body, 0, Vec::new()),
        HeaderVersion::V2 => split_v2(body).map_err(fail)?,
    };
    let body = Body::read_content(&header.type_name, content).map_err(fail)?;
    Ok(Message {
        version: header.version,
        device_name: header.device_name.clone(),
        timestamp: header.timestamp,
        body,
        message_id,
        metadata,
    })
}

/// Splits a version-2 body into content, message id and metadata.
fn split_v2(body: &[u8]) -> Result<(&[u8], u32, Vec<MetaEntry>), IgtlError> {
    let bad = |why: &'static str| IgtlError::BadExtendedHeader { body_bytes: body.len(), why };
    if body.len() < EXTENDED_HEADER_SIZE {
        return Err(bad("the body is shorter than the 12-byte extended header"));
    }
    let ext_size = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let meta_header_size = usize::from(u16::from_be_bytes([body[2], body[3]]));
    let meta_size = u32::from_be_bytes([body[4], body[5], body[6], body[7]]) as usize;
    let message_id = u32::from_be_bytes([body[8], body[9], body[10], body[11]]);
    if ext_size < EXTENDED_HEADER_SIZE {
        return Err(bad("the extended header size is under 12"));
    }
    let meta_start = body
        .len()
        .checked_sub(meta_header_size)
        .and_then(|v| v.checked_sub(meta_size))
        .filter(|start| *start >= ext_size)
        .ok_or_else(|| bad("the metadata sizes exceed the body"))?;
    let content = &body[ext_size..meta_start];
    let mut metadata = Vec::new();
    if meta_header_size >= 2 {
        let index = &body[meta_start..meta_start + meta_header_size];
        let count = usize::from(u16::from_be_bytes([index[0], index[1]]));
        if meta_header_size != 2 + 8 * count {
            return Err(bad("the metadata header size does not match its entry count"));
        }
        let mut at = meta_start + meta_header_size;
        for entry in index[2..].chunks_exact(8) {
            let key_len = usize::from(u16::from_be_bytes([entry[0], entry[1]]));
            let encoding = u16::from_be_bytes([entry[2], entry[3]]);
            let value_len = u32::from_be_bytes([entry[4], entry[5], entry[6], entry[7]]) as usize;
            let end = at.checked_add(key_len).and_then(|v| v.checked_add(value_len)).filter(|e| *e <= body.len());
            let Some(end) = end else { return Err(bad("a metadata entry runs past the body")) };
            let key = String::from_utf8_lossy(&body[at..at + key_len]).into_owned();
            let value = String::from_utf8_lossy(&body[at + key_len..end]).into_owned();
            metadata.push(MetaEntry { key, encoding, value });
            at = end;
        }
    } else if meta_header_size != 0 {
        return Err(bad("the metadata header is shorter than its 2-byte count"));
    }
    Ok((content, message_id, metadata))
}

/// What the decoder yields: a message, or one that was read and rejected (the stream is
/// still in step and reading goes on).
pub type Decoded = Result<Message, MessageError>;

/// Sans-IO stream decoder: feed it bytes as they arrive, take messages out.
#[derive(Debug)]
pub struct Decoder {
    buffer: Vec<u8>,
    start: usize,
    header: Option<Header>,
    max_body_bytes: u64,
    check_crc: bool,
    failed: Option<IgtlError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_BODY_BYTES, true)
    }
}

impl Decoder {
    /// A decoder refusing bodies over `max_body_bytes`, checking CRCs when `check_crc`.
    #[must_use]
    pub fn new(max_body_bytes: u64, check_crc: bool) -> Self {
        Self { buffer: Vec::new(), start: 0, header: None, max_body_bytes, check_crc, failed: None }
    }

    /// Appends received bytes (dropped once the stream has failed).
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.start > 0 && self.start >= self.buffer.len() / 2 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet consumed.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buffer.len() - self.start
    }

    /// How many more bytes the next step needs (header or body), so a driver can read
    /// exactly that much; 0 once the stream has failed.
    #[must_use]
    pub fn wanted(&self) -> usize {
        if self.failed.is_some() {
            return 0;
        }
        let need = match &self.header {
            None => HEADER_SIZE,
            Some(h) => h.body_size as usize,
        };
        need.saturating_sub(self.buffered())
    }

    /// The next message: `Ok(None)` when more bytes are needed, `Ok(Some(Err(..)))` for a
    /// message read and rejected (bad CRC or content; reading may go on), `Err` when the
    /// stream cannot be read further (unknown header version, body over the limit); the
    /// same error is returned again on every later call.
    pub fn next_message(&mut self) -> Result<Option<Decoded>, IgtlError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.header.is_none() {
            if self.buffered() < HEADER_SIZE {
                return Ok(None);
            }
            let mut raw = [0u8; HEADER_SIZE];
            raw.copy_from_slice(&self.buffer[self.start..self.start + HEADER_SIZE]);
            match Header::parse(&raw, self.max_body_bytes) {
                Ok(h) => {
                    self.start += HEADER_SIZE;
                    self.buffer.reserve((h.body_size as usize).saturating_sub(self.buffered()));
                    self.header = Some(h);
                }
                Err(e) => {
                    self.failed = Some(e.clone());
                    self.buffer = Vec::new();
                    self.start = 0;
                    return Err(e);
                }
            }
        }
        let Some(header) = &self.header else { return Ok(None) };
        let size = header.body_size as usize;
        if self.buffered() < size {
            return Ok(None);
        }
        let body = &self.buffer[self.start..self.start + size];
        let decoded = parse_body(header, body, self.check_crc);
        self.start += size;
        self.header = None;
        Ok(Some(decoded))
    }
}
