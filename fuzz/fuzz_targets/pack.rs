//! Delta pack headers: the input is read the way a client reads a pack whose hash
//! matched its release's document (a publisher's bug, or a stolen key, could sign
//! any bytes). Nothing may panic; a header that decodes must survive being encoded
//! again with its payload, every entry's data must lie inside the payload, and each
//! module's delta either applies to an empty tree or is refused with an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wavecast_schema::PackHeader;

fuzz_target!(|data: &[u8]| {
    let Ok((header, payload)) = PackHeader::decode(data) else {
        return;
    };
    let encoded = header.encode(payload);
    let (again, again_payload) = PackHeader::decode(&encoded).expect("an encoded pack decodes");
    assert_eq!(again, header, "the header round-trips");
    assert_eq!(again_payload, payload);
    for delta in header.modules.values() {
        for entry in &delta.entries {
            if let Some(data) = &entry.data {
                assert!(data.bytes(payload).is_some(), "data inside the payload");
            }
        }
        if let Ok(index) = delta.apply(None) {
            let json = index.to_json();
            wavecast_schema::FileIndex::parse(&json).expect("a derived index parses");
        }
    }
});
