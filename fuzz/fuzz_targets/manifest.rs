//! Manifest parsing and verification: the input is read the way a client reads a
//! channel file (envelope, signatures counted against the root of a pinned key, then the manifest),
//! and also handed straight to `Manifest::parse`, `PlatformRelease::parse` (a
//! release's document) and `FileIndex::parse`, as if a signature had been forged. Nothing may panic; whatever parses must survive its own
//! serialization unchanged (the publisher re-signs manifests it has parsed), and a
//! manifest that parses must give decisions that pass `wavecast_fuzz::check_decision`.
#![no_main]

use std::sync::LazyLock;

use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;
use wavecast_client::TrustedKey;
use wavecast_fuzz::checked_decide;
use wavecast_schema::{
    Attributes, ClientView, Envelope, FileIndex, Manifest, Mode, PlatformRelease, Role, Root,
};

/// The root of a client pinned to the key that signed the envelopes in
/// `fuzz/seeds/manifest/`.
static ROOT: LazyLock<Root> = LazyLock::new(|| {
    TrustedKey::parse("RWSwmsGmY7v0HBIcZqIdh0hwggLZh/zQlLpnxGCSQ2bsN75MqlovZN6T")
        .expect("a valid minisign public key")
        .root()
});

fn check_manifest(bytes: &[u8]) {
    let Ok(manifest) = Manifest::parse(bytes) else {
        return;
    };
    manifest.validate().expect("a parsed manifest is valid");
    let again = Manifest::parse(&manifest.to_json()).expect("a parsed manifest parses back");
    assert_eq!(again, manifest, "the manifest round-trips");

    let install_id = "client00000042".parse().expect("valid install id");
    let attributes = Attributes::from([("region".to_owned(), "eu".to_owned())]);
    let now = Timestamp::from_second(1_795_219_200).expect("in range");
    for platform in ["any", "x86_64-unknown-linux-gnu"] {
        let platform = platform.parse().expect("valid platform");
        let versions = manifest
            .releases
            .iter()
            .map(|release| Some(&release.version));
        for current in std::iter::once(None).chain(versions).take(4) {
            let view = ClientView {
                install_id: &install_id,
                platform: &platform,
                current,
                attributes: &attributes,
                pin: None,
            };
            for mode in [Mode::Scheduled, Mode::Manual] {
                checked_decide(&manifest, &view, now, mode);
            }
        }
    }
}

fn check_file_index(bytes: &[u8]) {
    let Ok(index) = FileIndex::parse(bytes) else {
        return;
    };
    let again = FileIndex::parse(&index.to_json()).expect("a parsed index parses back");
    assert_eq!(again, index, "the file index round-trips");
}

fn check_document(bytes: &[u8]) {
    let Ok(document) = PlatformRelease::parse(bytes) else {
        return;
    };
    let again = PlatformRelease::parse(&document.to_json()).expect("a parsed document parses back");
    assert_eq!(again, document, "the document round-trips");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::parse(data) {
        let signed = envelope.manifest.as_bytes();
        // Signature decoding and counting see arbitrary text; only the seeds'
        // untouched manifests verify.
        let _ = ROOT.check_signatures(Role::Release, "manifest", signed, &envelope.signatures);
        let again = Envelope::parse(&envelope.to_json()).expect("an envelope parses back");
        assert_eq!(again.manifest, envelope.manifest);
        // Then the manifest, as after a good signature (or a forged one).
        check_manifest(signed);
        check_file_index(signed);
    }
    check_manifest(data);
    check_document(data);
    check_file_index(data);
});
