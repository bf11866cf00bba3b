//! Fixtures shared by the tests of the core and of the crates built on it (the
//! filter's shell tests, the generator's, the end-to-end suite): one definition of the
//! seed regions, the policies every layer tests against and the token they carry.

/// The seed's first region.
pub const HZ: &str = "cn-hangzhou";
/// The seed's second region.
pub const SH: &str = "cn-shanghai";
/// The third region of the three-region chain.
pub const BJ: &str = "cn-beijing";

/// Seed A's policy: reviews 90/10 from cn-hangzhou, failing over both ways.
pub const SEED_A: &str = include_str!("../tests/fixtures/seed-a.json");
/// A three-region policy: cn-hangzhou fails over to cn-shanghai, then cn-beijing.
pub const THREE_REGIONS: &str = include_str!("../tests/fixtures/three-regions.json");
/// The `routeToken` both fixture policies carry.
pub const FIXTURE_ROUTE_TOKEN: &str = "test-route-token-not-a-secret";

pub use crate::store::MemoryStore;
