//! One libFuzzer target for every decoder of outside input (`chatcap::decoders`): the kind
//! is named by the environment variable `CHATCAP_FUZZ_KIND` (one of `decoders::KINDS`).
//! A decoder may refuse any input; a panic (or a decoded value that does not survive
//! encoding, checked by the entries) is a crash, saved by libFuzzer under fuzz/artifacts.

#![no_main]

use std::sync::OnceLock;

fn kind() -> &'static str {
    static KIND: OnceLock<String> = OnceLock::new();
    KIND.get_or_init(|| {
        let kind = std::env::var("CHATCAP_FUZZ_KIND").unwrap_or_default();
        assert!(
            chatcap::decoders::KINDS.contains(&kind.as_str()),
            "set CHATCAP_FUZZ_KIND to one of {:?}",
            chatcap::decoders::KINDS
        );
        kind
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = chatcap::decoders::decode(kind(), data);
});
