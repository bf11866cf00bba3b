//! geolb's pure core, shared by the proxy-wasm filter and the `geolb` generator:
//! the policy model and its validation, the per-request routing decision, and the
//! region health state machine. No IO and no proxy-wasm: the caller passes the time,
//! the randomness and the shared store in.

pub mod cluster;
pub mod dice;
pub mod error;
pub mod explain;
pub mod flags;
pub mod hash;
pub mod header;
pub mod health;
pub mod lifecycle;
pub mod outcome;
pub mod policy;
pub mod probe;
pub mod routing;
pub mod source;
pub mod spill;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod token;
pub mod units;
pub mod wire;

pub use error::{FieldPath, PolicyError, PolicyErrors, Problem, Segment};
pub use hash::fnv1a;
pub use policy::{
    CompiledPolicy, CompiledService, RegionId, ServiceId, Slot, passthrough_routing_header,
};
pub use wire::{API_VERSION, DEFAULT_ROUTING_HEADER};

/// Parses and validates a policy from its JSON bytes (a WasmPlugin `pluginConfig` as
/// Envoy hands it to the filter). Errors name the field path of every problem.
pub fn parse_policy(bytes: &[u8]) -> Result<CompiledPolicy, PolicyErrors> {
    let wire = parse_wire(bytes)?;
    CompiledPolicy::try_from(&wire)
}

/// Parses the JSON into wire types only (shape errors, with their field path).
pub fn parse_wire(bytes: &[u8]) -> Result<wire::Policy, PolicyErrors> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<wire::Policy, _> = serde_path_to_error::deserialize(&mut deserializer);
    let policy = parsed.map_err(|err| {
        let path = error::path_of(err.path());
        PolicyErrors(vec![
            path.error(Problem::Malformed(err.into_inner().to_string())),
        ])
    })?;
    deserializer.end().map_err(|err| {
        PolicyErrors(vec![
            error::FieldPath::root().error(Problem::Malformed(err.to_string())),
        ])
    })?;
    Ok(policy)
}

/// JSON Schema of the wire policy.
#[cfg(feature = "schema")]
pub fn json_schema() -> schemars::Schema {
    schemars::schema_for!(wire::Policy)
}
