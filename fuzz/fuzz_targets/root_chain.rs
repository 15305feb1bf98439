//! Root-chain walking: the input is one or more root files separated by NUL bytes,
//! walked in order from a pinned root the way a client walks `roots/2.json`,
//! `roots/3.json`… (JSON never holds a NUL). Each file is also read as a root a user
//! pins directly. Nothing may panic; every root accepted must be the next version,
//! with key sets that pass their own checks, and signed by thresholds of the old and
//! the new root keys. Each file is also read as a root draft, whose status must
//! agree with the client's check of the root it would publish.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use wavecast_schema::{
    KeySet, MAX_ROOT_STEPS, MAX_SIGNATURES, PublicKey, Role, Root, RootDraft, SignedRoot,
};

/// Root 1 of the site whose `roots/2.json` and `roots/3.json` are the seeds in
/// `fuzz/seeds/root_chain/`: a client pinned to its first key.
static PINNED: LazyLock<Root> = LazyLock::new(|| {
    Root::from_key(
        PublicKey::parse("RWRSnLg2aB6NaYMd1O334lNa91d/baTl2K6aXByZRWGg1cTT1ORX8Gve")
            .expect("a valid minisign public key"),
    )
});

fuzz_target!(|data: &[u8]| {
    let mut trusted = PINNED.clone();
    for bytes in data.split(|byte| *byte == 0).take(MAX_ROOT_STEPS as usize) {
        // Past `MAX_SIGNATURES` the client refuses the root whatever its status.
        if let Ok(draft) = RootDraft::parse(bytes)
            && draft.draft.signatures.len() <= MAX_SIGNATURES
        {
            assert_eq!(draft.next.version, draft.base.version + 1);
            let complete = draft.status().complete();
            let published = draft.to_signed_root().to_json();
            assert_eq!(
                complete,
                draft.base.verify_successor(&published).is_ok(),
                "a draft's status and the client's check of its root disagree"
            );
        }
        if let Ok(pinned) = Root::verify_pinned(bytes) {
            check_key_sets(&pinned);
        }
        let Ok(next) = trusted.verify_successor(bytes) else {
            break;
        };
        assert_eq!(
            next.version,
            trusted.version + 1,
            "roots go one step at a time"
        );
        check_key_sets(&next);
        let signed = SignedRoot::parse(bytes).expect("an accepted root parses");
        for (root, name) in [(&trusted, "old"), (&next, "new")] {
            root.check_signatures(
                Role::Root,
                "root",
                signed.root.as_bytes(),
                &signed.signatures,
            )
            .unwrap_or_else(|error| panic!("accepted without the {name} threshold: {error}"));
        }
        trusted = next;
    }
});

/// The key sets of an accepted root are ones [`KeySet::new`] accepts.
fn check_key_sets(root: &Root) {
    for set in [&root.root, &root.release] {
        KeySet::new(set.keys.clone(), set.threshold).expect("an accepted key set is valid");
    }
}
