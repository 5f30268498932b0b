//! DIMSE command sets (PS3.7 section 9 and annex E): the group-0000 elements of a request or a
//! response, always in implicit VR little endian, read from and written to bytes.

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;

/// Command Field values (PS3.7 E.1-1).
pub mod command_field {
    /// C-STORE-RQ.
    pub const C_STORE_RQ: u16 = 0x0001;
    /// C-STORE-RSP.
    pub const C_STORE_RSP: u16 = 0x8001;
    /// C-ECHO-RQ.
    pub const C_ECHO_RQ: u16 = 0x0030;
    /// C-ECHO-RSP.
    pub const C_ECHO_RSP: u16 = 0x8030;
    /// C-FIND-RQ.
    pub const C_FIND_RQ: u16 = 0x0020;
    /// C-MOVE-RQ.
    pub const C_MOVE_RQ: u16 = 0x0021;
    /// C-CANCEL-RQ.
    pub const C_CANCEL_RQ: u16 = 0x0FFF;
    /// The bit that makes a request's field its response's.
    pub const RESPONSE_BIT: u16 = 0x8000;
}

/// Status codes used here (PS3.7 annex C, PS3.4 B.2.3).
pub mod status {
    /// Success.
    pub const SUCCESS: u16 = 0x0000;
    /// Refused: SOP class not supported.
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    /// Unrecognized operation (a command this SCP does not serve).
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
    /// Error: data set does not match SOP class.
    pub const DATA_SET_DOES_NOT_MATCH: u16 = 0xA900;
    /// Refused: out of resources (the store could not be written).
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Error: cannot understand (the data set does not parse).
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// Pending: more matches or sub-operations follow (0xFF01 is pending with optional keys
    /// unsupported).
    pub const PENDING: u16 = 0xFF00;
    /// Cancelled (C-FIND, C-MOVE).
    pub const CANCEL: u16 = 0xFE00;
    /// Warning: sub-operations complete, one or more failed (C-MOVE).
    pub const SUB_OPERATIONS_WARNING: u16 = 0xB000;

    /// Whether `status` is a pending status (0xFF00 or 0xFF01).
    #[must_use]
    pub fn is_pending(status: u16) -> bool {
        status == 0xFF00 || status == 0xFF01
    }

    /// Whether `status` is a warning (0x0001, 0x0107, 0x0116, 0xB000-0xBFFF).
    #[must_use]
    pub fn is_warning(status: u16) -> bool {
        matches!(status, 0x0001 | 0x0107 | 0x0116 | 0xB000..=0xBFFF)
    }
}

/// Command Data Set Type (0000,0800) meaning "no data set follows".
pub const NO_DATA_SET: u16 = 0x0101;

/// Why a command set could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The bytes are not an implicit-VR-little-endian group-0000 data set.
    #[error("the command set does not parse: {0}")]
    Parse(String),
    /// A required element is missing or has the wrong type.
    #[error("the command set has no usable {0}")]
    Missing(&'static str),
    /// The response could not be encoded.
    #[error("the response could not be encoded: {0}")]
    Encode(String),
}

/// A command set as received: the fields csnav acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Command Field (0000,0100).
    pub field: u16,
    /// Message ID (0000,0110) of a request.
    pub message_id: u16,
    /// Affected SOP Class UID (0000,0002), trailing padding removed.
    pub affected_sop_class_uid: Option<String>,
    /// Affected SOP Instance UID (0000,1000), trailing padding removed.
    pub affected_sop_instance_uid: Option<String>,
    /// Whether a data set follows (Command Data Set Type other than 0x0101).
    pub has_data_set: bool,
    /// Status (0000,0900) of a response.
    pub status: Option<u16>,
    /// Error Comment (0000,0902) of a response.
    pub error_comment: Option<String>,
    /// Sub-operation counts (0000,1020-1023) of a C-MOVE or C-GET response.
    pub sub_operations: SubOperations,
}

/// The sub-operation counts of a retrieve response; each `None` when absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubOperations {
    /// Number of Remaining Sub-operations (0000,1020).
    pub remaining: Option<u16>,
    /// Number of Completed Sub-operations (0000,1021).
    pub completed: Option<u16>,
    /// Number of Failed Sub-operations (0000,1022).
    pub failed: Option<u16>,
    /// Number of Warning Sub-operations (0000,1023).
    pub warning: Option<u16>,
}

/// A string value as stored, its trailing padding removed (NUL for UIDs, space for text).
#[must_use]
pub fn trim_padding(value: &str) -> &str {
    value.trim_end_matches(['\0', ' '])
}

/// The P-DATA-TF PDU carrying a whole command set on a presentation context.
#[must_use]
pub fn command_pdu(presentation_context_id: u8, command: Vec<u8>) -> dicom_ul::Pdu {
    dicom_ul::Pdu::PData {
        data: vec![dicom_ul::pdu::PDataValue {
            presentation_context_id,
            value_type: dicom_ul::pdu::PDataValueType::Command,
            is_last: true,
            data: command,
        }],
    }
}

impl Command {
    /// Reads a command set from its bytes (implicit VR little endian).
    pub fn parse(bytes: &[u8]) -> Result<Self, CommandError> {
        let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
        let obj = InMemDicomObject::read_dataset_with_ts(bytes, &ts).map_err(|e| CommandError::Parse(e.to_string()))?;
        let u16_of = |tag: Tag, name: &'static str| -> Result<u16, CommandError> {
            obj.element(tag).ok().and_then(|e| e.uint16().ok()).ok_or(CommandError::Missing(name))
        };
        let string_of = |tag: Tag| -> Option<String> {
            obj.element(tag).ok().and_then(|e| e.to_str().ok()).map(|s| trim_padding(&s).to_owned())
        };
        let field = u16_of(tags::COMMAND_FIELD, "Command Field (0000,0100)")?;
        let data_set_type = u16_of(tags::COMMAND_DATA_SET_TYPE, "Command Data Set Type (0000,0800)")?;
        // A response carries Message ID Being Responded To instead; requests need a Message ID.
        let message_id = if field & command_field::RESPONSE_BIT == 0 {
            u16_of(tags::MESSAGE_ID, "Message ID (0000,0110)")?
        } else {
            u16_of(tags::MESSAGE_ID_BEING_RESPONDED_TO, "Message ID Being Responded To (0000,0120)")?
        };
        let optional_u16 = |tag: Tag| obj.element(tag).ok().and_then(|e| e.uint16().ok());
        Ok(Self {
            field,
            message_id,
            affected_sop_class_uid: string_of(tags::AFFECTED_SOP_CLASS_UID),
            affected_sop_instance_uid: string_of(tags::AFFECTED_SOP_INSTANCE_UID),
            has_data_set: data_set_type != NO_DATA_SET,
            status: optional_u16(tags::STATUS),
            error_comment: obj
                .element(tags::ERROR_COMMENT)
                .ok()
                .and_then(|e| e.to_str().ok())
                .map(|s| trim_padding(&s).to_owned()),
            sub_operations: SubOperations {
                remaining: optional_u16(tags::NUMBER_OF_REMAINING_SUBOPERATIONS),
                completed: optional_u16(tags::NUMBER_OF_COMPLETED_SUBOPERATIONS),
                failed: optional_u16(tags::NUMBER_OF_FAILED_SUBOPERATIONS),
                warning: optional_u16(tags::NUMBER_OF_WARNING_SUBOPERATIONS),
            },
        })
    }
}

/// UIDs are padded to even length with NUL (PS3.5 6.2).
fn uid_value(uid: &str) -> PrimitiveValue {
    let mut s = uid.to_owned();
    if s.len() % 2 == 1 {
        s.push('\0');
    }
    PrimitiveValue::from(s)
}

/// A response to a request: what it answers and how it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// The request's Command Field (the response bit is added).
    pub request_field: u16,
    /// The Message ID of the request answered.
    pub message_id: u16,
    /// Affected SOP Class UID, when known.
    pub affected_sop_class_uid: Option<&'a str>,
    /// Affected SOP Instance UID, when known.
    pub affected_sop_instance_uid: Option<&'a str>,
    /// Status (0000,0900).
    pub status: u16,
    /// Error Comment (0000,0902), for failures.
    pub error_comment: Option<&'a str>,
}

/// Encodes a response command set: the request's field with the response bit, the message it
/// answers, the affected SOP class and instance when known, the status and an optional error
/// comment, with the group length first.
pub fn response(r: &Response<'_>) -> Result<Vec<u8>, CommandError> {
    let Response {
        request_field,
        message_id,
        affected_sop_class_uid,
        affected_sop_instance_uid,
        status,
        error_comment,
    } = *r;
    let mut elements = Vec::new();
    if let Some(uid) = affected_sop_class_uid {
        elements.push(DataElement::new(tags::AFFECTED_SOP_CLASS_UID, VR::UI, uid_value(uid)));
    }
    elements.push(DataElement::new(
        tags::COMMAND_FIELD,
        VR::US,
        PrimitiveValue::from(request_field | command_field::RESPONSE_BIT),
    ));
    elements.push(DataElement::new(tags::MESSAGE_ID_BEING_RESPONDED_TO, VR::US, PrimitiveValue::from(message_id)));
    elements.push(DataElement::new(tags::COMMAND_DATA_SET_TYPE, VR::US, PrimitiveValue::from(NO_DATA_SET)));
    elements.push(DataElement::new(tags::STATUS, VR::US, PrimitiveValue::from(status)));
    if let Some(uid) = affected_sop_instance_uid {
        elements.push(DataElement::new(tags::AFFECTED_SOP_INSTANCE_UID, VR::UI, uid_value(uid)));
    }
    if let Some(comment) = error_comment {
        // LO: at most 64 characters, padded to even length with a space.
        let mut text: String = comment.chars().filter(char::is_ascii).take(64).collect();
        if text.len() % 2 == 1 {
            text.push(' ');
        }
        elements.push(DataElement::new(tags::ERROR_COMMENT, VR::LO, PrimitiveValue::from(text)));
    }
    encode_with_group_length(elements)
}

/// A request: what it asks, of which SOP class and instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// Command Field (0000,0100).
    pub field: u16,
    /// Message ID (0000,0110).
    pub message_id: u16,
    /// Affected SOP Class UID (0000,0002).
    pub affected_sop_class_uid: &'a str,
    /// Affected SOP Instance UID (0000,1000), for C-STORE.
    pub affected_sop_instance_uid: Option<&'a str>,
    /// Move Destination (0000,0600), for C-MOVE: the AE title the instances go to.
    pub move_destination: Option<&'a str>,
    /// Whether a data set (an instance or an identifier) follows.
    pub has_data_set: bool,
}

impl<'a> Request<'a> {
    /// A request of `field` with no instance, destination or data set.
    #[must_use]
    pub fn new(field: u16, message_id: u16, affected_sop_class_uid: &'a str) -> Self {
        Self {
            field,
            message_id,
            affected_sop_class_uid,
            affected_sop_instance_uid: None,
            move_destination: None,
            has_data_set: false,
        }
    }
}

/// Encodes a request command set: field, message ID, affected SOP class (and instance),
/// priority medium for the services that carry one, move destination, and whether a data set
/// follows.
pub fn request(r: &Request<'_>) -> Result<Vec<u8>, CommandError> {
    let mut elements = vec![
        DataElement::new(tags::AFFECTED_SOP_CLASS_UID, VR::UI, uid_value(r.affected_sop_class_uid)),
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(r.field)),
        DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(r.message_id)),
    ];
    if let Some(destination) = r.move_destination {
        // AE: 16 characters at most, padded to even length with a space.
        let mut text = destination.trim().to_owned();
        if text.len() % 2 == 1 {
            text.push(' ');
        }
        elements.push(DataElement::new(tags::MOVE_DESTINATION, VR::AE, PrimitiveValue::from(text)));
    }
    if matches!(r.field, command_field::C_STORE_RQ | command_field::C_FIND_RQ | command_field::C_MOVE_RQ) {
        // Priority (0000,0700): medium.
        elements.push(DataElement::new(tags::PRIORITY, VR::US, PrimitiveValue::from(0u16)));
    }
    elements.push(DataElement::new(
        tags::COMMAND_DATA_SET_TYPE,
        VR::US,
        PrimitiveValue::from(if r.has_data_set { 0x0000u16 } else { NO_DATA_SET }),
    ));
    if let Some(uid) = r.affected_sop_instance_uid {
        elements.push(DataElement::new(tags::AFFECTED_SOP_INSTANCE_UID, VR::UI, uid_value(uid)));
    }
    encode_with_group_length(elements)
}

/// Writes the elements (in tag order) after a Command Group Length (0000,0000) that counts them.
fn encode_with_group_length(elements: Vec<DataElement<InMemDicomObject>>) -> Result<Vec<u8>, CommandError> {
    let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
    let body_obj = InMemDicomObject::from_element_iter(elements);
    let mut body = Vec::new();
    body_obj.write_dataset_with_ts(&mut body, &ts).map_err(|e| CommandError::Encode(e.to_string()))?;
    let length = u32::try_from(body.len()).map_err(|_| CommandError::Encode("command set over 4 GiB".into()))?;
    // (0000,0000) UL, implicit VR: tag, 4-byte length 4, value.
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(&[0, 0, 0, 0, 4, 0, 0, 0]);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    /// A C-ECHO-RSP as PS3.7 lays it out, byte for byte: group length 66 (0x42), then
    /// Affected SOP Class UID "1.2.840.10008.1.1" padded with a NUL to 18 bytes, Command Field
    /// 0x8030, Message ID Being Responded To 7, Command Data Set Type 0x0101, Status 0.
    #[test]
    fn an_echo_response_is_encoded_byte_exact() {
        let bytes = response(&Response {
            request_field: command_field::C_ECHO_RQ,
            message_id: 7,
            affected_sop_class_uid: Some("1.2.840.10008.1.1"),
            affected_sop_instance_uid: None,
            status: status::SUCCESS,
            error_comment: None,
        })
        .unwrap();
        let mut expected: Vec<u8> = vec![0, 0, 0, 0, 4, 0, 0, 0, 0x42, 0, 0, 0];
        expected.extend_from_slice(&[0, 0, 2, 0, 18, 0, 0, 0]);
        expected.extend_from_slice(b"1.2.840.10008.1.1\0");
        expected.extend_from_slice(&[0, 0, 0, 1, 2, 0, 0, 0, 0x30, 0x80]);
        expected.extend_from_slice(&[0, 0, 0x20, 1, 2, 0, 0, 0, 7, 0]);
        expected.extend_from_slice(&[0, 0, 0, 8, 2, 0, 0, 0, 1, 1]);
        expected.extend_from_slice(&[0, 0, 0, 9, 2, 0, 0, 0, 0, 0]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn a_store_request_reads_back() {
        let bytes = request(&Request {
            affected_sop_instance_uid: Some("1.2.3.4"),
            has_data_set: true,
            ..Request::new(command_field::C_STORE_RQ, 3, "1.2.840.10008.5.1.4.1.1.12.1")
        })
        .unwrap();
        let c = Command::parse(&bytes).unwrap();
        assert_eq!(c.field, command_field::C_STORE_RQ);
        assert_eq!(c.message_id, 3);
        assert_eq!(c.affected_sop_class_uid.as_deref(), Some("1.2.840.10008.5.1.4.1.1.12.1"));
        assert_eq!(c.affected_sop_instance_uid.as_deref(), Some("1.2.3.4"), "the NUL padding is removed");
        assert!(c.has_data_set);
    }

    #[test]
    fn garbage_and_incomplete_commands_are_errors_not_panics() {
        assert!(Command::parse(&[0xff; 7]).is_err());
        assert!(Command::parse(&[]).is_err(), "an empty command has no Command Field");
        // A valid element that is not a command.
        let bytes = response(&Response {
            request_field: command_field::C_ECHO_RQ,
            message_id: 1,
            affected_sop_class_uid: None,
            affected_sop_instance_uid: None,
            status: 0,
            error_comment: None,
        })
        .unwrap();
        assert!(Command::parse(&bytes[..bytes.len() - 3]).is_err(), "truncated");
        let mut no_field = request(&Request::new(command_field::C_ECHO_RQ, 1, "1.2.840.10008.1.1")).unwrap();
        no_field.truncate(12 + 8 + 18);
        assert!(matches!(Command::parse(&no_field), Err(CommandError::Missing(_))));
    }
}
