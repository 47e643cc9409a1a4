//! Every decoder of outside input, one entry per kind of input, each taking raw bytes:
//! what the fuzz targets (`fuzz/`, cargo-fuzz) and the property tests (`tests/decoders`)
//! feed. An entry returns `Ok` when its input decoded, `Err` with the decoder's own
//! message when it was refused; a panic, or a decoded value that does not survive being
//! encoded and decoded again, is the bug they look for.
//!
//! File inputs are decoded from memory where the decoder takes text (scenarios, topology
//! files, population specs, hardware profiles); a results folder is a folder, so
//! [`results_folder`] writes the input over one file of a valid folder and opens that.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use chatcap_server::protocol::decode as request;
use chatcap_server::protocol::pool::PoolFrame;
use chatcap_server::protocol::session::Frame;

/// The kinds of input, by the names of their fuzz targets and seed folders.
pub const KINDS: &[&str] = &[
    "client_request",
    "session_frame",
    "pool_frame",
    "scenario",
    "population",
    "topology",
    "profile",
    "results_folder",
];

/// Feed `input` to the decoder of `kind` (one of [`KINDS`]).
pub fn decode(kind: &str, input: &[u8]) -> Result<(), String> {
    match kind {
        "client_request" => client_request(input),
        "session_frame" => session_frame(input),
        "pool_frame" => pool_frame(input),
        "scenario" => scenario(input),
        "population" => population(input),
        "topology" => topology(input),
        "profile" => profile(input),
        "results_folder" => results_folder(input),
        other => panic!("no decoder named {other}; the kinds are {KINDS:?}"),
    }
}

/// A client's JSON request, as front ends and chat servers read it. A request that
/// decodes says the same when encoded and decoded again; a refused one carries its id
/// whenever the id is readable.
pub fn client_request(input: &[u8]) -> Result<(), String> {
    match request::decode(input) {
        Ok(req) => {
            let again = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
            let back = request::decode(&again)
                .unwrap_or_else(|(_, e)| panic!("{req:?} encoded does not decode: {e}"));
            assert_eq!(back, req, "a request survives encoding");
            Ok(())
        }
        Err((id, e)) => {
            let readable = request::RequestHead::read(input).and_then(|h| h.id());
            assert_eq!(id, readable, "the error echoes every readable id");
            Err(e.to_string())
        }
    }
}

/// A front end ↔ chat server frame body; what decodes encodes back to itself.
pub fn session_frame(input: &[u8]) -> Result<(), String> {
    round_trip(input, Frame::decode, Frame::to_bytes)
}

/// A chat server ↔ chat server (TCP 8011) frame body; what decodes encodes back to itself.
pub fn pool_frame(input: &[u8]) -> Result<(), String> {
    round_trip(input, PoolFrame::decode, PoolFrame::to_bytes)
}

/// Decode a binary frame body; a frame that decodes must encode and decode to itself.
fn round_trip<F, E>(
    input: &[u8],
    decode: fn(Bytes) -> Result<F, E>,
    encode: fn(&F) -> Bytes,
) -> Result<(), String>
where
    F: PartialEq + std::fmt::Debug,
    E: std::fmt::Display,
{
    let frame = decode(Bytes::copy_from_slice(input)).map_err(|e| e.to_string())?;
    let back =
        decode(encode(&frame)).unwrap_or_else(|e| panic!("{frame:?} encoded does not decode: {e}"));
    assert_eq!(back, frame, "a frame survives encoding");
    Ok(())
}

/// Text of a file, or the decoder's kind of refusal for bytes that are not UTF-8 (every
/// file reader here refuses them the same way before parsing).
fn text(input: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(input).map_err(|e| format!("not UTF-8: {e}"))
}

/// A scenario file, read into a validated run plan.
pub fn scenario(input: &[u8]) -> Result<(), String> {
    crate::scenario::Scenario::parse(text(input)?, Path::new("fuzz.toml"))
        .map(drop)
        .map_err(|e| e.to_string())
}

/// A population spec (`chatcap provision --spec`), parsed and validated.
pub fn population(input: &[u8]) -> Result<(), String> {
    use chatcap_server::provision::spec::PopulationSpec;
    let spec = PopulationSpec::from_toml(text(input)?).map_err(|e| e.to_string())?;
    spec.validate().map(drop).map_err(|e| e.to_string())
}

/// A pool topology file, checked as `chatcap topology check` does.
pub fn topology(input: &[u8]) -> Result<(), String> {
    chatcap_server::topology::Topology::from_str(text(input)?, Path::new("fuzz.toml"))
        .map(drop)
        .map_err(|e| e.to_string())
}

/// A hardware profile file.
pub fn profile(input: &[u8]) -> Result<(), String> {
    crate::profile::Profile::parse(text(input)?, Path::new("fuzz.toml"))
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The files of a results folder the input may replace, by its first byte.
const RESULTS_FILES: &[&str] = &[
    "summary.json",
    "timeline.csv",
    "resources.csv",
    "histograms.hlog",
    "server_metrics.csv",
];

/// A results folder as `report`, `compare` and `gate` open it: the valid folder in
/// `fuzz/results_base`, with the file picked by the input's first byte
/// replaced by the rest of the input.
pub fn results_folder(input: &[u8]) -> Result<(), String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let Some((pick, content)) = input.split_first() else {
        return Err("empty input".into());
    };
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/results_base");
    let dir = std::env::temp_dir().join(format!(
        "chatcap-decode-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for name in RESULTS_FILES {
        std::fs::copy(base.join(name), dir.join(name))
            .unwrap_or_else(|e| panic!("the seed folder {} lacks {name}: {e}", base.display()));
    }
    let name = RESULTS_FILES[*pick as usize % RESULTS_FILES.len()];
    let opened = std::fs::write(dir.join(name), content)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            crate::report::results::Results::open(&dir)
                .map(drop)
                .map_err(|e| e.to_string())
        });
    let _ = std::fs::remove_dir_all(&dir);
    opened
}
