//! The signed envelope a channel manifest travels in.
//!
//! The envelope is a single JSON file holding the manifest's exact bytes (as a JSON
//! string) and the minisign signatures of those bytes, one per release key that
//! signed. Because they live in one file, written atomically, a reader can never pair
//! a manifest from one publish with a signature from another, whatever the host or
//! cache does.
//!
//! To check a published manifest with the stock minisign CLI:
//!
//! ```text
//! jq -j .manifest site/channels/stable.json > stable.manifest.json
//! jq -j '.signatures[0]' site/channels/stable.json > stable.manifest.json.minisig
//! minisign -V -p wavecast.pub -m stable.manifest.json
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The envelope's own format version. Format 1 held one `signature`; format 2 holds
/// a list, so a manifest can carry the threshold of release keys its root requires.
const ENVELOPE_FORMAT: u32 = 2;

/// A manifest and its detached minisign signatures, stored together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Format of the envelope itself.
    pub format: u32,
    /// The manifest, byte for byte as signed.
    pub manifest: String,
    /// minisign signatures of `manifest`, in minisign's text format (what
    /// `minisign -S` writes to a `.minisig` file).
    pub signatures: Vec<String>,
}

/// What format 1 envelopes look like on the wire.
#[derive(Deserialize)]
struct AnyEnvelope {
    format: u32,
    manifest: String,
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    signatures: Vec<String>,
}

impl Envelope {
    /// Wraps signed manifest text and its signatures.
    pub fn new(manifest: String, signatures: Vec<String>) -> Self {
        Self {
            format: ENVELOPE_FORMAT,
            manifest,
            signatures,
        }
    }

    /// Parses an envelope, of this format or format 1. This checks the shape only:
    /// the signatures are verified by the caller, against the root it trusts, before
    /// the manifest is parsed.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let any: AnyEnvelope = serde_json::from_slice(bytes).map_err(|source| Error::Json {
            document: "signed manifest envelope",
            source,
        })?;
        if any.format > ENVELOPE_FORMAT {
            return Err(Error::UnsupportedFormat {
                document: "signed manifest envelope",
                found: any.format,
                supported: ENVELOPE_FORMAT,
            });
        }
        let mut signatures = any.signatures;
        signatures.extend(any.signature);
        Ok(Self {
            format: any.format,
            manifest: any.manifest,
            signatures,
        })
    }

    /// The root version the (not yet verified) manifest says it was signed under, or
    /// 1 when it names none or does not parse. Only a hint: it tells a client how far
    /// to walk the chain of roots before checking the signatures, and the manifest's
    /// own signed `root_version` is checked afterwards.
    pub fn root_version_hint(&self) -> u64 {
        #[derive(Deserialize)]
        struct Hint {
            #[serde(default = "crate::manifest::first_root")]
            root_version: u64,
        }
        serde_json::from_str::<Hint>(&self.manifest).map_or(1, |hint| hint.root_version)
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
        let envelope = Envelope::new(text.into(), vec!["untrusted comment: x\nRW...\n".into()]);
        let parsed = Envelope::parse(&envelope.to_json()).unwrap();
        assert_eq!(parsed.manifest.as_bytes(), text.as_bytes());
    }

    #[test]
    fn format_1_envelopes_with_one_signature_still_parse() {
        let old = br#"{"format": 1, "manifest": "{}", "signature": "sig"}"#;
        let parsed = Envelope::parse(old).unwrap();
        assert_eq!(parsed.signatures, vec!["sig".to_owned()]);
        assert_eq!(parsed.root_version_hint(), 1);
    }

    #[test]
    fn the_root_version_hint_is_read_without_trusting_the_manifest() {
        let envelope = Envelope::new(r#"{"root_version": 7, "junk": true}"#.into(), Vec::new());
        assert_eq!(envelope.root_version_hint(), 7);
        assert_eq!(
            Envelope::new("not json".into(), Vec::new()).root_version_hint(),
            1
        );
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
