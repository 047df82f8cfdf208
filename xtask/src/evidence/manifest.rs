//! `MANIFEST.sha256`: `<sha256>  <path>` for every file the rehearsal wrote (sorted, recursively),
//! and for every input it rehearsed (migrations, rollbacks, contract and test files, as paths
//! relative to the rehearsal dir), the format `sha256sum -c MANIFEST.sha256` verifies from inside
//! the dir. Files are hashed as streams (sha2), never read whole.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::artifacts::write_atomic;

pub const NAME: &str = "MANIFEST.sha256";

/// The hex sha256 of a file, read 64 KiB at a time.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("hashing {}", path.display()))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).with_context(|| format!("hashing {}", path.display()))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hex(&hash.finalize()))
}

/// The hex sha256 of bytes in memory.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Write the manifest of `dir`; `inputs` are `(path relative to dir, sha256)` of what was rehearsed.
pub fn write(dir: &Path, inputs: &[(String, String)]) -> Result<()> {
    let mut lines = Vec::new();
    for entry in crate::walk::tree(dir) {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).expect("under the dir").to_string_lossy().into_owned();
        if rel == NAME || rel.starts_with('.') {
            continue;
        }
        lines.push(format!("{}  {rel}\n", sha256_file(entry.path())?));
    }
    for (rel, hash) in inputs {
        lines.push(format!("{hash}  {rel}\n"));
    }
    write_atomic(&dir.join(NAME), lines.concat().as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_digests() {
        assert_eq!(super::sha256(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(super::sha256(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
