//! A structural pre-check of a Part 10 byte stream (PS3.5 section 7): walks every element,
//! sequence item and pixel fragment and checks that each declared length fits in the bytes
//! that remain. It runs before the full parser so that a truncated or corrupted file is
//! reported with the element and byte offset at fault, and so that a damaged length can never
//! make the parser allocate gigabytes for data that is not there.

/// How the data set is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Encoding {
    /// Explicit VR (false: implicit VR little endian).
    pub explicit_vr: bool,
    /// Big endian (only with explicit VR).
    pub big_endian: bool,
}

/// What the walk found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StructureProblem {
    /// Byte offset from the start of the file (preamble included when present).
    pub offset: usize,
    /// Description naming the element.
    pub reason: String,
}

const UNDEFINED: u32 = u32::MAX;
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);
const SEQUENCE_END: (u16, u16) = (0xFFFE, 0xE0DD);
/// The value representations of PS3.5 table 6.2-1. Any other VR makes the header layout
/// (2- or 4-byte length) unknowable, so the file is rejected rather than misread.
const KNOWN_VRS: [&[u8; 2]; 34] = [
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"OB", b"OD", b"OF", b"OL",
    b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM", b"UC", b"UI", b"UL", b"UN", b"UR", b"US",
    b"UT", b"UV",
];

/// Sequences nested deeper than this are rejected rather than recursed into.
const MAX_DEPTH: usize = 32;

/// An element header as read from the stream.
type ElementHeader = ((u16, u16), Option<[u8; 2]>, u32, usize);

struct Walker<'a> {
    bytes: &'a [u8],
    base: usize,
    big_endian: bool,
    explicit_vr: bool,
}

fn tag_name(tag: (u16, u16)) -> String {
    format!("({:04X},{:04X})", tag.0, tag.1)
}

impl Walker<'_> {
    fn problem(&self, at: usize, reason: String) -> StructureProblem {
        StructureProblem { offset: self.base + at, reason }
    }

    fn u16_at(&self, at: usize) -> Option<u16> {
        let b = self.bytes.get(at..at + 2)?;
        Some(if self.big_endian { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) })
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b = self.bytes.get(at..at + 4)?;
        let a = [b[0], b[1], b[2], b[3]];
        Some(if self.big_endian { u32::from_be_bytes(a) } else { u32::from_le_bytes(a) })
    }

    fn tag_at(&self, at: usize) -> Result<(u16, u16), StructureProblem> {
        match (self.u16_at(at), self.u16_at(at + 2)) {
            (Some(g), Some(e)) => Ok((g, e)),
            _ => {
                Err(self.problem(at, format!("file ends inside an element tag ({} bytes left)", self.bytes.len() - at)))
            }
        }
    }

    /// Reads an element header at `at`: tag, VR (explicit VR only), value length, header size.
    fn header(&self, at: usize) -> Result<ElementHeader, StructureProblem> {
        let tag = self.tag_at(at)?;
        let truncated = || self.problem(at, format!("file ends inside the header of element {}", tag_name(tag)));
        if tag.0 == 0xFFFE || !self.explicit_vr {
            let len = self.u32_at(at + 4).ok_or_else(truncated)?;
            return Ok((tag, None, len, 8));
        }
        let vr_bytes = self.bytes.get(at + 4..at + 6).ok_or_else(truncated)?;
        let vr = [vr_bytes[0], vr_bytes[1]];
        if !KNOWN_VRS.contains(&&vr) {
            return Err(self.problem(
                at,
                format!("element {} has an unknown VR {:?} (PS3.5 6.2)", tag_name(tag), String::from_utf8_lossy(&vr)),
            ));
        }
        let long = matches!(
            &vr,
            b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"SV" | b"UC" | b"UN" | b"UR" | b"UT" | b"UV"
        );
        if long {
            Ok((tag, Some(vr), self.u32_at(at + 8).ok_or_else(truncated)?, 12))
        } else {
            Ok((tag, Some(vr), u32::from(self.u16_at(at + 6).ok_or_else(truncated)?), 8))
        }
    }

    fn skip(&self, at: usize, len: u32, what: &str) -> Result<usize, StructureProblem> {
        if len % 2 == 1 {
            return Err(self
                .problem(at, format!("{what} has odd value length {len} (PS3.5 7.1.1: value lengths must be even)")));
        }
        let remaining = self.bytes.len().saturating_sub(at);
        if len as usize > remaining {
            return Err(self.problem(
                at,
                format!("{what} declares {len} bytes but only {remaining} remain (truncated or corrupt file)"),
            ));
        }
        Ok(at + len as usize)
    }

    /// Walks elements from `at` until the end, or until `until` (a delimiter tag) is consumed.
    fn elements(&self, mut at: usize, until: Option<(u16, u16)>, depth: usize) -> Result<usize, StructureProblem> {
        if depth > MAX_DEPTH {
            return Err(self.problem(at, format!("sequences nested deeper than {MAX_DEPTH} levels")));
        }
        while at < self.bytes.len() {
            let (tag, vr, len, header) = self.header(at)?;
            if Some(tag) == until {
                return Ok(at + header);
            }
            let value = at + header;
            let name = tag_name(tag);
            at = if len == UNDEFINED {
                // Undefined length: a sequence, or encapsulated pixel data, or UN holding a sequence.
                let encapsulated = tag == (0x7FE0, 0x0010);
                self.items(value, depth + 1, encapsulated, true, &name)?
            } else if vr == Some(*b"SQ") {
                let end = self.skip(value, len, &format!("sequence {name}"))?;
                let inner = Walker { bytes: &self.bytes[..end], ..*self };
                inner.items(value, depth + 1, false, false, &name)?;
                end
            } else {
                self.skip(value, len, &format!("element {name}"))?
            };
        }
        match until {
            None => Ok(at),
            Some(delimiter) => Err(self.problem(at, format!("file ends before the delimiter {}", tag_name(delimiter)))),
        }
    }

    /// Walks the items of a sequence (or the fragments of encapsulated pixel data); one of
    /// undefined length must end with a sequence delimiter.
    fn items(
        &self,
        mut at: usize,
        depth: usize,
        fragments: bool,
        undefined_length: bool,
        owner: &str,
    ) -> Result<usize, StructureProblem> {
        while at < self.bytes.len() {
            let tag = self.tag_at(at)?;
            let len = self
                .u32_at(at + 4)
                .ok_or_else(|| self.problem(at, format!("file ends inside an item header of {owner}")))?;
            match tag {
                SEQUENCE_END => return Ok(at + 8),
                ITEM if len == UNDEFINED && !fragments => at = self.elements(at + 8, Some(ITEM_END), depth)?,
                ITEM if len == UNDEFINED => {
                    return Err(self.problem(at, format!("pixel fragment of {owner} has undefined length")));
                }
                ITEM if fragments => at = self.skip(at + 8, len, &format!("pixel data fragment of {owner}"))?,
                ITEM => {
                    let end = self.skip(at + 8, len, &format!("item of {owner}"))?;
                    let inner = Walker { bytes: &self.bytes[..end], ..*self };
                    inner.elements(at + 8, None, depth)?;
                    at = end;
                }
                other => {
                    return Err(self.problem(at, format!("expected an item in {owner}, found tag {}", tag_name(other))));
                }
            }
        }
        if undefined_length {
            return Err(self.problem(at, format!("file ends before the sequence delimiter of {owner}")));
        }
        Ok(at)
    }
}

/// Walks the file meta group of `part10` (which starts at `DICM`; `base` is its offset in
/// the file) and returns where the data set starts within `part10`.
pub(crate) fn data_set_offset(part10: &[u8], base: usize) -> Result<usize, StructureProblem> {
    let meta = Walker { bytes: part10, base, big_endian: false, explicit_vr: true };
    let mut at = 4;
    while at < part10.len() && meta.tag_at(at)?.0 == 0x0002 {
        let (tag, _, len, header) = meta.header(at)?;
        at = meta.skip(at + header, len, &format!("file meta element {}", tag_name(tag)))?;
    }
    Ok(at)
}

/// Checks every length in a data set; `base` is the data set's offset for messages.
pub(crate) fn check_data_set(data_set: &[u8], base: usize, encoding: Encoding) -> Result<(), StructureProblem> {
    let walker = Walker { bytes: data_set, base, big_endian: encoding.big_endian, explicit_vr: encoding.explicit_vr };
    walker.elements(0, None, 0).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LE: Encoding = Encoding { explicit_vr: true, big_endian: false };

    /// Meta group then data set, as ingest runs them.
    fn check(part10: &[u8], base: usize, encoding: Encoding) -> Result<(), StructureProblem> {
        let at = data_set_offset(part10, base)?;
        check_data_set(&part10[at..], base + at, encoding)
    }

    /// `DICM` plus a one-element meta group (Transfer Syntax UID, explicit VR LE).
    fn part10(data_set: &[u8]) -> Vec<u8> {
        let mut v = b"DICM".to_vec();
        v.extend_from_slice(&[0x02, 0x00, 0x10, 0x00, b'U', b'I', 20, 0]);
        v.extend_from_slice(b"1.2.840.10008.1.2.1\0");
        v.extend_from_slice(data_set);
        v
    }

    fn element(group: u16, element: u16, vr: [u8; 2], value: &[u8]) -> Vec<u8> {
        let mut v = [group.to_le_bytes(), element.to_le_bytes()].concat();
        v.extend_from_slice(&vr);
        v.extend_from_slice(&(value.len() as u16).to_le_bytes());
        v.extend_from_slice(value);
        v
    }

    /// (0008,1140) SQ of undefined length holding one undefined-length item.
    fn nested_sequence() -> Vec<u8> {
        let mut v = vec![0x08, 0x00, 0x40, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        v.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        v.extend(element(0x0008, 0x1150, *b"UI", b"1.2.3\0"));
        v.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        v.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        v
    }

    #[test]
    fn walks_nested_undefined_length_sequences() {
        let mut ds = element(0x0008, 0x0060, *b"CS", b"XA");
        ds.extend(nested_sequence());
        ds.extend(element(0x0028, 0x0010, *b"US", &[8, 0]));
        assert_eq!(check(&part10(&ds), 128, LE), Ok(()));
    }

    #[test]
    fn reports_the_element_that_overruns_with_its_offset() {
        let mut ds = element(0x0008, 0x0060, *b"CS", b"XA");
        ds.extend(element(0x0028, 0x0010, *b"US", &[8, 0]));
        let mut bytes = part10(&ds);
        let at = bytes.len() - 4; // length field of (0028,0010)
        bytes[at..at + 2].copy_from_slice(&200u16.to_le_bytes());
        let problem = check(&bytes, 128, LE).unwrap_err();
        assert!(problem.reason.contains("(0028,0010) declares 200 bytes but only 2 remain"), "{problem:?}");
        assert_eq!(problem.offset, 128 + bytes.len() - 2);
    }

    #[test]
    fn unterminated_sequence_and_odd_lengths_are_named() {
        let mut truncated = nested_sequence();
        truncated.truncate(truncated.len() - 8);
        let problem = check(&part10(&truncated), 0, LE).unwrap_err();
        assert!(problem.reason.contains("file ends"), "{problem:?}");
        let odd = element(0x0010, 0x0010, *b"PN", b"ABC");
        let problem = check(&part10(&odd), 0, LE).unwrap_err();
        assert!(problem.reason.contains("(0010,0010) has odd value length 3"), "{problem:?}");
    }

    #[test]
    fn unknown_vr_is_rejected() {
        let ds = element(0x0008, 0x0070, *b"CX", b"ab");
        let problem = check(&part10(&ds), 0, LE).unwrap_err();
        assert!(problem.reason.contains("(0008,0070) has an unknown VR \"CX\""), "{problem:?}");
    }

    #[test]
    fn implicit_vr_uses_four_byte_lengths() {
        let mut ds = [0x28u16.to_le_bytes(), 0x10u16.to_le_bytes()].concat();
        ds.extend_from_slice(&2u32.to_le_bytes());
        ds.extend_from_slice(&[8, 0]);
        assert_eq!(check(&part10(&ds), 0, Encoding { explicit_vr: false, big_endian: false }), Ok(()));
    }
}
