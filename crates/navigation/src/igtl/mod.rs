//! OpenIGTLink, the open protocol of image-guided intervention (protocol v3, header
//! versions 1 and 2): a sans-IO codec ([`codec`]) for the messages a tracking link needs
//! ([`message`]), the CRC-64 it carries ([`crc64`]) and its time stamps ([`timestamp`]).
//! Wire facts are from the reference library (openigtlink/OpenIGTLink `Source/igtlutil`)
//! and were cross-checked byte for byte against pyigtl 0.3.4.

pub mod codec;
pub mod crc64;
pub mod message;
pub mod timestamp;

pub use codec::{DEFAULT_MAX_BODY_BYTES, Decoded, Decoder, HEADER_SIZE, Header, HeaderVersion, Message, MetaEntry};
pub use message::{
    Body, DataType, DeviceName, FixedName, PointElement, Position, Status, StatusCode, StreamParams, Text,
    TrackingElement, TrackingKind, Transform,
};
pub use timestamp::Timestamp;

/// The conventional OpenIGTLink port (Slicer, PLUS, pyigtl).
pub const DEFAULT_PORT: u16 = 18944;

/// What was wrong with OpenIGTLink bytes or with a message to be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgtlError {
    /// The header's version is neither 1 nor 2: the stream is not OpenIGTLink (or is out of step).
    #[error("OpenIGTLink header version {0} is not 1 or 2 (not an OpenIGTLink stream, or out of step)")]
    UnsupportedHeaderVersion(u16),
    /// The header's type name is empty.
    #[error("OpenIGTLink header has an empty type name")]
    EmptyTypeName,
    /// The header claims a body larger than the receiver accepts.
    #[error("{type_name} message claims a {body_size}-byte body, over the {max_body_bytes}-byte limit")]
    BodyTooLarge {
        /// Type name.
        type_name: String,
        /// Claimed body size.
        body_size: u64,
        /// The limit.
        max_body_bytes: u64,
    },
    /// The body's CRC-64 is not the header's.
    #[error("CRC-64 mismatch: header says {expected:#018x}, body gives {actual:#018x}")]
    CrcMismatch {
        /// CRC in the header.
        expected: u64,
        /// CRC of the body received.
        actual: u64,
    },
    /// A version-2 body's extended header or metadata is inconsistent.
    #[error("bad extended header or metadata in a {body_bytes}-byte body: {why}")]
    BadExtendedHeader {
        /// Body size.
        body_bytes: usize,
        /// What is inconsistent.
        why: &'static str,
    },
    /// The content does not have the size or form its type requires.
    #[error("{type_name} content of {content_bytes} bytes is malformed: expected {expected}")]
    BadContent {
        /// Type name.
        type_name: String,
        /// Content size received.
        content_bytes: usize,
        /// What the type requires.
        expected: &'static str,
    },
    /// A name does not fit its fixed-width field or is not printable ASCII.
    #[error("name \"{name}\" is not printable ASCII of at most {max_bytes} bytes")]
    InvalidName {
        /// The name (escaped).
        name: String,
        /// Field width.
        max_bytes: usize,
    },
    /// A field to be sent is over the protocol's size limit.
    #[error("{what} is {bytes} bytes, over the protocol's {max_bytes}")]
    TooLong {
        /// Which field.
        what: &'static str,
        /// Its size.
        bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
}

/// A message that was read whole but rejected; the stream is still in step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{type_name} message from device \"{device_name}\" rejected: {error}")]
pub struct MessageError {
    /// Its type name.
    pub type_name: String,
    /// Its device name.
    pub device_name: DeviceName,
    /// Why.
    pub error: IgtlError,
}
