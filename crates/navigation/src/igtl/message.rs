//! OpenIGTLink message contents (protocol v3 documents `transform.md`, `position.md`,
//! `trackingdata.md`, `status.md`, `string.md`, `point.md`, `query.md`): typed values and
//! their big-endian byte layouts. The framing (header, extended header, metadata, CRC) is
//! in [`super::codec`].

use nalgebra::{Matrix4, Quaternion, UnitQuaternion, Vector3};

use super::IgtlError;

/// A fixed-width, NUL-padded ASCII name of at most `N` bytes (device names are 20, type
/// names 12, point names 64...). All `N` bytes may be used, with no terminator.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FixedName<const N: usize>(String);

impl<const N: usize> FixedName<N> {
    /// A name, refused when longer than `N` bytes or not printable ASCII.
    pub fn new(name: &str) -> Result<Self, IgtlError> {
        if name.len() > N || !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(IgtlError::InvalidName { name: name.escape_default().to_string(), max_bytes: N });
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reads a field: bytes up to the first NUL (trailing spaces kept, as the reference
    /// library does); bytes outside ASCII are replaced.
    #[must_use]
    pub fn read(field: &[u8]) -> Self {
        let end = field.iter().position(|b| *b == 0).unwrap_or(field.len()).min(N);
        Self(
            field[..end]
                .iter()
                .map(|b| if b.is_ascii() && !b.is_ascii_control() { char::from(*b) } else { '?' })
                .collect(),
        )
    }

    /// Writes the NUL-padded `N`-byte field.
    pub fn write(&self, out: &mut Vec<u8>) {
        let bytes = self.0.as_bytes();
        out.extend_from_slice(bytes);
        out.resize(out.len() + (N - bytes.len()), 0);
    }
}

impl<const N: usize> std::fmt::Display for FixedName<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A device name (the header's 20-byte field): which tool, image or stream a message is about.
pub type DeviceName = FixedName<20>;

/// A rigid (or affine) transform as OpenIGTLink carries it: the upper 3x4 of a 4x4 matrix,
/// column-major (R11 R21 R31 R12 R22 R32 R13 R23 R33 TX TY TZ), translation in mm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transform(pub [f32; 12]);

impl Transform {
    /// The identity.
    pub const IDENTITY: Self = Self([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);

    /// From a homogeneous 4x4 matrix (the last row is dropped).
    #[must_use]
    pub fn from_matrix(m: &Matrix4<f64>) -> Self {
        let mut v = [0.0f32; 12];
        for col in 0..4 {
            for row in 0..3 {
                v[col * 3 + row] = m[(row, col)] as f32;
            }
        }
        Self(v)
    }

    /// The homogeneous 4x4 matrix.
    #[must_use]
    pub fn to_matrix(&self) -> Matrix4<f64> {
        let mut m = Matrix4::identity();
        for col in 0..4 {
            for row in 0..3 {
                m[(row, col)] = f64::from(self.0[col * 3 + row]);
            }
        }
        m
    }

    /// The translation, mm.
    #[must_use]
    pub fn translation_mm(&self) -> Vector3<f64> {
        Vector3::new(f64::from(self.0[9]), f64::from(self.0[10]), f64::from(self.0[11]))
    }

    fn write(&self, out: &mut Vec<u8>) {
        for v in self.0 {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }

    fn read(b: &[u8]) -> Self {
        let mut v = [0.0f32; 12];
        for (i, x) in v.iter_mut().enumerate() {
            *x = be_f32(&b[4 * i..]);
        }
        Self(v)
    }
}

/// POSITION: a point and, in the 28- and 24-byte forms, an orientation quaternion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    /// Position, mm.
    pub position_mm: [f32; 3],
    /// Orientation `(x, y, z, w)`; `None` in the 12-byte, position-only form.
    pub quaternion_xyzw: Option<[f32; 4]>,
}

impl Position {
    /// The orientation as a unit quaternion, when present and not degenerate.
    #[must_use]
    pub fn orientation(&self) -> Option<UnitQuaternion<f64>> {
        let [x, y, z, w] = self.quaternion_xyzw?;
        let q = Quaternion::new(f64::from(w), f64::from(x), f64::from(y), f64::from(z));
        (q.norm() > 1e-6).then(|| UnitQuaternion::from_quaternion(q))
    }
}

/// What a tracked element is (TDATA `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackingKind {
    /// The tracker itself (1).
    Tracker,
    /// A 6-DoF instrument (2).
    Instrument6D,
    /// A 3-DoF instrument, tip position only (3).
    Instrument3D,
    /// A 5-DoF instrument (4).
    Instrument5D,
    /// A value the standard does not define.
    Other(u8),
}

impl TrackingKind {
    fn code(self) -> u8 {
        match self {
            Self::Tracker => 1,
            Self::Instrument6D => 2,
            Self::Instrument3D => 3,
            Self::Instrument5D => 4,
            Self::Other(c) => c,
        }
    }

    fn from_code(c: u8) -> Self {
        match c {
            1 => Self::Tracker,
            2 => Self::Instrument6D,
            3 => Self::Instrument3D,
            4 => Self::Instrument5D,
            other => Self::Other(other),
        }
    }
}

/// One TDATA element (70 bytes): a named tool and its transform.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingElement {
    /// Tool name (20 bytes).
    pub name: FixedName<20>,
    /// Tool kind.
    pub kind: TrackingKind,
    /// The tool's transform.
    pub transform: Transform,
}

/// STATUS codes (`status.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    /// 0: invalid packet.
    Invalid,
    /// 1: OK.
    Ok,
    /// 2: unknown error.
    UnknownError,
    /// 3: panic mode.
    Panic,
    /// 4: not found.
    NotFound,
    /// 5: access denied.
    AccessDenied,
    /// 6: busy.
    Busy,
    /// 7: time out or connection lost.
    TimeOut,
    /// 8: overflow.
    Overflow,
    /// 9: checksum error.
    ChecksumError,
    /// 10: configuration error.
    ConfigurationError,
    /// 11: not enough resource.
    ResourceError,
    /// 12: illegal or unknown instruction.
    UnknownInstruction,
    /// 13: device not ready.
    NotReady,
    /// 14: manual mode.
    ManualMode,
    /// 15: device disabled.
    Disabled,
    /// 16: device not present.
    NotPresent,
    /// 17: unknown version.
    UnknownVersion,
    /// 18: hardware failure.
    HardwareFailure,
    /// 19: shutting down.
    ShuttingDown,
    /// A code the standard does not define.
    Other(u16),
}

impl StatusCode {
    const KNOWN: [Self; 20] = [
        Self::Invalid,
        Self::Ok,
        Self::UnknownError,
        Self::Panic,
        Self::NotFound,
        Self::AccessDenied,
        Self::Busy,
        Self::TimeOut,
        Self::Overflow,
        Self::ChecksumError,
        Self::ConfigurationError,
        Self::ResourceError,
        Self::UnknownInstruction,
        Self::NotReady,
        Self::ManualMode,
        Self::Disabled,
        Self::NotPresent,
        Self::UnknownVersion,
        Self::HardwareFailure,
        Self::ShuttingDown,
    ];

    /// The wire code.
    #[must_use]
    pub fn code(self) -> u16 {
        match self {
            Self::Other(c) => c,
            known => Self::KNOWN.iter().position(|k| *k == known).map_or(0, |i| i as u16),
        }
    }

    /// From the wire code.
    #[must_use]
    pub fn from_code(c: u16) -> Self {
        Self::KNOWN.get(usize::from(c)).copied().unwrap_or(Self::Other(c))
    }
}

/// STATUS: a device's state or the outcome of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// Status code.
    pub code: StatusCode,
    /// Device-specific sub-code.
    pub subcode: i64,
    /// Short error name (20 bytes).
    pub error_name: FixedName<20>,
    /// Free-text message (sent with its trailing NUL, as the reference library does).
    pub message: String,
}

/// STRING: text with its IANA `MIBenum` encoding (3 US-ASCII, 106 UTF-8), at most 65535 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// `MIBenum` of the encoding.
    pub encoding: u16,
    /// The text.
    pub text: String,
}

impl Text {
    /// `MIBenum` of US-ASCII, the protocol's default.
    pub const US_ASCII: u16 = 3;
    /// `MIBenum` of UTF-8.
    pub const UTF_8: u16 = 106;

    /// Text in UTF-8 (US-ASCII when it is pure ASCII).
    #[must_use]
    pub fn new(text: &str) -> Self {
        Self { encoding: if text.is_ascii() { Self::US_ASCII } else { Self::UTF_8 }, text: text.to_owned() }
    }
}

/// One POINT element (136 bytes): a fiducial or landmark.
#[derive(Debug, Clone, PartialEq)]
pub struct PointElement {
    /// Point name (64 bytes).
    pub name: FixedName<64>,
    /// Group ("Labeled Point", "Landmark", "Fiducial"; 32 bytes).
    pub group: FixedName<32>,
    /// Colour, RGBA.
    pub rgba: [u8; 4],
    /// Position, mm.
    pub position_mm: [f32; 3],
    /// Diameter, mm (the reference struct calls it radius; the value passes through).
    pub diameter_mm: f32,
    /// Device name of the image it belongs to (20 bytes).
    pub owner: FixedName<20>,
}

/// The data types that queries (GET_/STT_/STP_/RTS_) name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataType {
    /// TRANSFORM (queried as `GET_TRANS` by the reference library, `GET_TRANSFOR` by the spec).
    Transform,
    /// POSITION.
    Position,
    /// TDATA.
    TrackingData,
    /// QTDATA.
    QuaternionTrackingData,
    /// STATUS.
    Status,
    /// STRING.
    String,
    /// POINT.
    Point,
    /// IMAGE.
    Image,
    /// Any other type, by its (truncated) name.
    Other(String),
}

impl DataType {
    /// The type as it follows a query prefix (`GET_` + this, 8 bytes at most).
    fn query_suffix(&self) -> &str {
        match self {
            Self::Transform => "TRANS",
            Self::Position => "POSITION",
            Self::TrackingData => "TDATA",
            Self::QuaternionTrackingData => "QTDATA",
            Self::Status => "STATUS",
            Self::String => "STRING",
            Self::Point => "POINT",
            Self::Image => "IMAGE",
            Self::Other(s) => s,
        }
    }

    fn from_query_suffix(s: &str) -> Self {
        match s {
            "TRANS" | "TRANSFOR" | "TRANSFORM" => Self::Transform,
            "POSITION" => Self::Position,
            "TDATA" => Self::TrackingData,
            "QTDATA" => Self::QuaternionTrackingData,
            "STATUS" => Self::Status,
            "STRING" => Self::String,
            "POINT" => Self::Point,
            "IMAGE" => Self::Image,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// Streaming parameters of `STT_TDATA`/`STT_QTDATA` (36 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamParams {
    /// Milliseconds between frames; 0 = as fast as possible.
    pub resolution_ms: i32,
    /// Coordinate system name (32 bytes); empty = the default.
    pub coordinate_name: FixedName<32>,
}

/// A message's content.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// TRANSFORM.
    Transform(Transform),
    /// POSITION (28-, 24- or 12-byte form on receive; 28 or 12 on send).
    Position(Position),
    /// TDATA: several tools at once.
    TrackingData(Vec<TrackingElement>),
    /// STATUS.
    Status(Status),
    /// STRING.
    Text(Text),
    /// POINT: fiducials.
    Points(Vec<PointElement>),
    /// `GET_<type>`: send one message of that type.
    Get(DataType),
    /// `STT_<type>`: start streaming (parameters for tracking data).
    StartStream(DataType, Option<StreamParams>),
    /// `STP_<type>`: stop streaming.
    StopStream(DataType),
    /// `RTS_<type>`: the reply to a start/stop or a command, with its status byte when
    /// present (0 = success).
    Ready(DataType, Option<u8>),
    /// Any other type, kept as opaque content (the protocol's forward compatibility).
    Other {
        /// The header's type name.
        type_name: String,
        /// The content bytes.
        content: Vec<u8>,
    },
}

/// Bytes per TDATA element.
const TDATA_ELEMENT_SIZE: usize = 70;
/// Bytes per POINT element.
const POINT_ELEMENT_SIZE: usize = 136;
/// Bytes of the STATUS fixed part.
const STATUS_HEADER_SIZE: usize = 30;

fn be_f32(b: &[u8]) -> f32 {
    f32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn write_f32s(out: &mut Vec<u8>, values: &[f32]) {
    for v in values {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn read_f32s<const N: usize>(b: &[u8]) -> [f32; N] {
    let mut v = [0.0f32; N];
    for (i, x) in v.iter_mut().enumerate() {
        *x = be_f32(&b[4 * i..]);
    }
    v
}

impl Body {
    /// The header's type name for this content.
    #[must_use]
    pub fn type_name(&self) -> String {
        match self {
            Self::Transform(_) => "TRANSFORM".into(),
            Self::Position(_) => "POSITION".into(),
            Self::TrackingData(_) => "TDATA".into(),
            Self::Status(_) => "STATUS".into(),
            Self::Text(_) => "STRING".into(),
            Self::Points(_) => "POINT".into(),
            Self::Get(t) => format!("GET_{}", t.query_suffix()),
            Self::StartStream(t, _) => format!("STT_{}", t.query_suffix()),
            Self::StopStream(t) => format!("STP_{}", t.query_suffix()),
            Self::Ready(t, _) => format!("RTS_{}", t.query_suffix()),
            Self::Other { type_name, .. } => type_name.clone(),
        }
    }

    /// Appends the content bytes.
    pub fn write_content(&self, out: &mut Vec<u8>) -> Result<(), IgtlError> {
        match self {
            Self::Transform(t) => t.write(out),
            Self::Position(p) => {
                write_f32s(out, &p.position_mm);
                if let Some(q) = p.quaternion_xyzw {
                    write_f32s(out, &q);
                }
            }
            Self::TrackingData(elements) => {
                for e in elements {
                    e.name.write(out);
                    out.push(e.kind.code());
                    out.push(0);
                    e.transform.write(out);
                }
            }
            Self::Status(s) => {
                out.extend_from_slice(&s.code.code().to_be_bytes());
                out.extend_from_slice(&s.subcode.to_be_bytes());
                s.error_name.write(out);
                out.extend_from_slice(s.message.as_bytes());
                out.push(0);
            }
            Self::Text(t) => {
                let len = u16::try_from(t.text.len()).map_err(|_| IgtlError::TooLong {
                    what: "STRING text",
                    bytes: t.text.len(),
                    max_bytes: 65535,
                })?;
                out.extend_from_slice(&t.encoding.to_be_bytes());
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(t.text.as_bytes());
            }
            Self::Points(points) => {
                for p in points {
                    p.name.write(out);
                    p.group.write(out);
                    out.extend_from_slice(&p.rgba);
                    write_f32s(out, &p.position_mm);
                    write_f32s(out, &[p.diameter_mm]);
                    p.owner.write(out);
                }
            }
            Self::Get(_) | Self::StopStream(_) | Self::StartStream(_, None) | Self::Ready(_, None) => {}
            Self::StartStream(_, Some(params)) => {
                out.extend_from_slice(&params.resolution_ms.to_be_bytes());
                params.coordinate_name.write(out);
            }
            Self::Ready(_, Some(status)) => out.push(*status),
            Self::Other { content, .. } => out.extend_from_slice(content),
        }
        Ok(())
    }

    /// Parses the content of a message of type `type_name`.
    pub fn read_content(type_name: &str, c: &[u8]) -> Result<Self, IgtlError> {
        let bad = |expected: &'static str| IgtlError::BadContent {
            type_name: type_name.to_owned(),
            content_bytes: c.len(),
            expected,
        };
        Ok(match type_name {
            "TRANSFORM" => {
                if c.len() != 48 {
                    return Err(bad("48 bytes"));
                }
                Self::Transform(Transform::read(c))
            }
            "POSITION" => match c.len() {
                28 => {
                    Self::Position(Position { position_mm: read_f32s(c), quaternion_xyzw: Some(read_f32s(&c[12..])) })
                }
                24 => {
                    let [x, y, z] = read_f32s::<3>(&c[12..]);
                    let w = (1.0 - (x * x + y * y + z * z)).max(0.0).sqrt();
                    Self::Position(Position { position_mm: read_f32s(c), quaternion_xyzw: Some([x, y, z, w]) })
                }
                12 => Self::Position(Position { position_mm: read_f32s(c), quaternion_xyzw: None }),
                _ => return Err(bad("28, 24 or 12 bytes")),
            },
            "TDATA" => {
                if !c.len().is_multiple_of(TDATA_ELEMENT_SIZE) {
                    return Err(bad("a multiple of 70 bytes"));
                }
                Self::TrackingData(
                    c.chunks_exact(TDATA_ELEMENT_SIZE)
                        .map(|e| TrackingElement {
                            name: FixedName::read(&e[..20]),
                            kind: TrackingKind::from_code(e[20]),
                            transform: Transform::read(&e[22..]),
                        })
                        .collect(),
                )
            }
            "STATUS" => {
                if c.len() < STATUS_HEADER_SIZE {
                    return Err(bad("at least 30 bytes"));
                }
                let message = &c[STATUS_HEADER_SIZE..];
                let end = message.iter().position(|b| *b == 0).unwrap_or(message.len());
                Self::Status(Status {
                    code: StatusCode::from_code(be_u16(c)),
                    subcode: i64::from_be_bytes([c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]]),
                    error_name: FixedName::read(&c[10..30]),
                    message: String::from_utf8_lossy(&message[..end]).into_owned(),
                })
            }
            "STRING" => {
                if c.len() < 4 || c.len() != 4 + usize::from(be_u16(&c[2..])) {
                    return Err(bad("4 bytes + the length in its field"));
                }
                let text = std::str::from_utf8(&c[4..]).map_err(|_| bad("text in US-ASCII or UTF-8"))?;
                Self::Text(Text { encoding: be_u16(c), text: text.to_owned() })
            }
            "POINT" => {
                if !c.len().is_multiple_of(POINT_ELEMENT_SIZE) {
                    return Err(bad("a multiple of 136 bytes"));
                }
                Self::Points(
                    c.chunks_exact(POINT_ELEMENT_SIZE)
                        .map(|e| PointElement {
                            name: FixedName::read(&e[..64]),
                            group: FixedName::read(&e[64..96]),
                            rgba: [e[96], e[97], e[98], e[99]],
                            position_mm: read_f32s(&e[100..]),
                            diameter_mm: be_f32(&e[112..]),
                            owner: FixedName::read(&e[116..136]),
                        })
                        .collect(),
                )
            }
            query if query.len() > 4 && matches!(&query[..4], "GET_" | "STT_" | "STP_" | "RTS_") => {
                let data = DataType::from_query_suffix(&query[4..]);
                match &query[..4] {
                    "GET_" => Self::Get(data),
                    "STP_" => Self::StopStream(data),
                    "STT_" => match c.len() {
                        0 => Self::StartStream(data, None),
                        36 => Self::StartStream(
                            data,
                            Some(StreamParams { resolution_ms: be_i32(c), coordinate_name: FixedName::read(&c[4..]) }),
                        ),
                        // A start with a body this crate does not model (not tracking data).
                        _ => Self::Other { type_name: query.to_owned(), content: c.to_vec() },
                    },
                    _ => match c.len() {
                        0 => Self::Ready(data, None),
                        1 => Self::Ready(data, Some(c[0])),
                        // A reply with more than a status byte (RTS_COMMAND, RTS_CAPABIL...).
                        _ => Self::Other { type_name: query.to_owned(), content: c.to_vec() },
                    },
                }
            }
            other => Self::Other { type_name: other.to_owned(), content: c.to_vec() },
        })
    }
}
