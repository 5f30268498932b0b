//! CRC-64/ECMA-182 as OpenIGTLink uses it (`igtl_util.c`): polynomial 0x42F0E1EBA9EA3693,
//! not reflected, initial value 0, no final xor; computed over the whole message body.

/// The generator polynomial (normal form).
const POLYNOMIAL: u64 = 0x42F0_E1EB_A9EA_3693;

/// The byte-at-a-time table, built at compile time (MSB-first shift and xor of `i << 56`).
const TABLE: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u64) << 56;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & (1 << 63) != 0 { (crc << 1) ^ POLYNOMIAL } else { crc << 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// Continues a CRC-64/ECMA-182 over `data` from `crc` (0 to start).
#[must_use]
pub fn crc64_update(mut crc: u64, data: &[u8]) -> u64 {
    for &byte in data {
        crc = TABLE[usize::from(byte ^ (crc >> 56) as u8)] ^ (crc << 8);
    }
    crc
}

/// The CRC-64/ECMA-182 of `data`, as carried in an OpenIGTLink header.
#[must_use]
pub fn crc64(data: &[u8]) -> u64 {
    crc64_update(0, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalogue check value and the table entries quoted from `igtl_util.c`.
    #[test]
    fn matches_the_catalogue_and_the_reference_table() {
        assert_eq!(crc64(b"123456789"), 0x6C40_DF5F_0B49_7347);
        assert_eq!(TABLE[0], 0);
        assert_eq!(TABLE[1], 0x42F0_E1EB_A9EA_3693);
        assert_eq!(TABLE[2], 0x85E1_C3D7_53D4_6D26);
        assert_eq!(TABLE[255], 0x9AFC_E626_CE85_B507);
        assert_eq!(crc64(b""), 0);
    }

    /// Feeding the data in pieces gives the same CRC as all at once.
    #[test]
    fn is_incremental() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let (a, b) = data.split_at(377);
        assert_eq!(crc64_update(crc64_update(0, a), b), crc64(&data));
    }
}
