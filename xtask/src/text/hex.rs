//! Hex, as the server's `encode(..., 'hex')` writes it: what the tool's catalog reads come back
//! in (no line break or escape survives psql's output otherwise). A plain loop over the bytes:
//! the tool is built unoptimised, and a snapshot is thousands of lines.

/// The bytes `text` encodes (lower or upper case digits), `None` when it is not hex.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let mut out = vec![0u8; bytes.len() / 2];
    let mut bad = 0u8;
    for (pair, byte) in bytes.chunks_exact(2).zip(out.iter_mut()) {
        let (high, low) = (VALUE[pair[0] as usize], VALUE[pair[1] as usize]);
        bad |= high | low;
        *byte = high << 4 | (low & 0x0f);
    }
    (bad & 0xf0 == 0).then_some(out)
}

/// Each byte's value as a hex digit; 0xff for a byte that is not one.
const VALUE: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut b = 0;
    while b < 10 {
        table[b'0' as usize + b] = b as u8;
        b += 1;
    }
    let mut b = 0;
    while b < 6 {
        table[b'a' as usize + b] = 10 + b as u8;
        table[b'A' as usize + b] = 10 + b as u8;
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    #[test]
    fn what_the_server_encodes_decodes() {
        assert_eq!(super::decode("6162c3a90a").unwrap(), "abé\n".as_bytes());
        assert_eq!(super::decode("6F6B").unwrap(), b"ok");
        assert_eq!(super::decode(""), Some(Vec::new()));
        assert_eq!(super::decode("616"), None, "an odd length");
        assert_eq!(super::decode("zz"), None);
    }
}
