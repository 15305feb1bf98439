//! The signed envelope a channel manifest travels in.
//!
//! The envelope is a single JSON file holding the manifest's exact bytes (as a JSON
//! string) and the minisign signature of those bytes. Because both live in one file,
//! written atomically, a reader can never pair a manifest from one publish with a
//! signature from another, whatever the host or cache does.
//!
//! To check a published manifest with the stock minisign CLI:
//!
//! ```text
//! jq -j .manifest site/channels/stable.json > stable.manifest.json
//! jq -j .signature site/channels/stable.json > stable.manifest.json.minisig
//! minisign -V -p wavecast.pub -m stable.manifest.json
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The envelope's own format version.
const ENVELOPE_FORMAT: u32 = 1;

/// A manifest and its detached minisign signature, stored together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Format of the envelope itself.
    pub format: u32,
    /// The manifest, byte for byte as signed.
    pub manifest: String,
    /// The minisign signature of `manifest`, in minisign's text format (what
    /// `minisign -S` writes to a `.minisig` file).
    pub signature: String,
}

impl Envelope {
    /// Wraps signed manifest text and its signature.
    pub fn new(manifest: String, signature: String) -> Self {
        Self {
            format: ENVELOPE_FORMAT,
            manifest,
            signature,
        }
    }

    /// Parses an envelope. This checks the shape only: the signature is verified by
    /// the caller, against its pinned key, before the manifest is parsed.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let envelope: Self = serde_json::from_slice(bytes).map_err(|source| Error::Json {
            document: "signed manifest envelope",
            source,
        })?;
        if envelope.format > ENVELOPE_FORMAT {
            return Err(Error::UnsupportedFormat {
                document: "signed manifest envelope",
                found: envelope.format,
                supported: ENVELOPE_FORMAT,
            });
        }
        Ok(envelope)
    }

    /// The envelope as the bytes of the published file.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes =
            serde_json::to_vec_pretty(self).expect("an envelope always serializes to JSON");
        bytes.push(b'\n');
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_bytes_survive_the_envelope_exactly() {
        let text = "{\n  \"format\": 1,\n  \"notes\": \"tabs\\t and \\u00e9 é\"\n}\n";
        let envelope = Envelope::new(text.into(), "untrusted comment: x\nRW...\n".into());
        let parsed = Envelope::parse(&envelope.to_json()).unwrap();
        assert_eq!(parsed.manifest.as_bytes(), text.as_bytes());
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let error = Envelope::parse(b"<html>502 Bad Gateway</html>").unwrap_err();
        assert!(
            error.to_string().contains("signed manifest envelope"),
            "{error}"
        );
    }
}
