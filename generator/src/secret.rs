//! The route secret: where `render` and `check` find it (environment variables the
//! plan names, never the plan itself), and the route tokens it yields.
//!
//! The token the filter sends and the VirtualServices match is derived from the secret
//! by the pure core ([`geolb_policy::token::derive_route_token`]); the secret is read
//! here, in the shell, and never printed.

use std::ffi::OsString;

use geolb_policy::token::{MIN_SECRET_LEN, RouteSecret, derive_route_token};

use crate::plan::Plan;

/// Environment variable holding the route secret when the plan names none.
pub const DEFAULT_SECRET_ENV: &str = "GEOLB_ROUTE_SECRET";

/// The secret the committed example manifests, the demo and the tests render with; the
/// scripts read the same file. It is public, so a mesh rendered with it has no
/// protection against clients that pick a region: never use it for a real mesh
/// (`render` warns when it sees it).
pub const EXAMPLE_ROUTE_SECRET: &str =
    include_str!("../../manifests/examples/route-secret.example");

/// The secrets one render uses: the current one (the filter sends its token) and,
/// while rotating, the previous one (the VirtualServices still accept its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSecrets {
    /// Its token is the one the policy carries.
    pub current: RouteSecret,
    /// Its token is accepted too, until the rotation ends.
    pub previous: Option<RouteSecret>,
}

/// Why the route secret could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum SecretError {
    /// The variable is not set (or empty).
    #[error("the route secret is missing: environment variable {var} ({field}) is not set")]
    #[diagnostic(
        code(geolb::route_secret::missing),
        help(
            "set {var} to a secret of at least 32 characters kept out of the repository (e.g. from the CI's secret store); docs/plan.md#routesecret"
        )
    )]
    Missing {
        /// The variable.
        var: String,
        /// The plan field that names it.
        field: &'static str,
    },
    /// The variable holds fewer than [`MIN_SECRET_LEN`] bytes.
    #[error(
        "the route secret in environment variable {var} ({field}) is {len} bytes long; it needs at least {min}"
    )]
    #[diagnostic(
        code(geolb::route_secret::too_short),
        help("generate one with e.g. `openssl rand -base64 33`; docs/plan.md#routesecret")
    )]
    TooShort {
        /// The variable.
        var: String,
        /// The plan field that names it.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// The variable is not valid UTF-8 (the OS gave bytes a secret store would not).
    #[error("the route secret in environment variable {var} ({field}) is not valid UTF-8")]
    #[diagnostic(code(geolb::route_secret::encoding))]
    NotUnicode {
        /// The variable.
        var: String,
        /// The plan field that names it.
        field: &'static str,
    },
}

impl RouteSecrets {
    /// The documented example secret ([`EXAMPLE_ROUTE_SECRET`]), no previous one:
    /// what the committed examples, the demo and the tests render with.
    pub fn example() -> Result<Self, SecretError> {
        Ok(Self {
            current: read(
                &|_: &str| Some(OsString::from(EXAMPLE_ROUTE_SECRET)),
                DEFAULT_SECRET_ENV,
                "filter.routeSecret.env",
            )?,
            previous: None,
        })
    }

    /// Reads the secrets from the variables the plan names (`filter.routeSecret.env`,
    /// default [`DEFAULT_SECRET_ENV`]; `filter.routeSecret.previousEnv` when set).
    /// `lookup` is the environment (`std::env::var_os` in the CLI).
    pub fn from_env(
        plan: &Plan,
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Self, SecretError> {
        let source = plan.filter.route_secret.clone().unwrap_or_default();
        let env = source.env.as_deref().unwrap_or(DEFAULT_SECRET_ENV);
        let current = read(&lookup, env, "filter.routeSecret.env")?;
        let previous = match source.previous_env.as_deref() {
            Some(var) => Some(read(&lookup, var, "filter.routeSecret.previousEnv")?),
            None => None,
        };
        Ok(Self { current, previous })
    }

    /// Whether the current secret is the public example one.
    pub fn is_example(&self) -> bool {
        Self::example().is_ok_and(|example| example.current == self.current)
    }

    /// The route tokens of the plan: the current secret's first (the one the policy
    /// carries), then the previous secret's when it differs.
    pub fn tokens(&self, plan: &Plan) -> Vec<String> {
        let context = token_context(plan);
        let mut tokens = vec![derive_route_token(&self.current, &context)];
        if let Some(previous) = &self.previous {
            let token = derive_route_token(previous, &context);
            if !tokens.contains(&token) {
                tokens.push(token);
            }
        }
        tokens
    }
}

/// What a token is derived for: the plan's mesh names, sorted and comma-joined. The
/// rendered `mesh/` objects are shared by every mesh of a plan, so one token serves
/// them all; two plans (two separate meshes) under one secret get different tokens.
pub fn token_context(plan: &Plan) -> String {
    let mut names: Vec<&str> = plan.meshes.iter().map(|m| m.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names.join(",")
}

fn read(
    lookup: &impl Fn(&str) -> Option<OsString>,
    var: &str,
    field: &'static str,
) -> Result<RouteSecret, SecretError> {
    let value = lookup(var)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| SecretError::Missing {
            var: var.to_owned(),
            field,
        })?;
    let text = value.into_string().map_err(|_| SecretError::NotUnicode {
        var: var.to_owned(),
        field,
    })?;
    let len = text.len();
    RouteSecret::new(text.into_bytes()).map_err(|_| SecretError::TooShort {
        var: var.to_owned(),
        field,
        len,
        min: MIN_SECRET_LEN,
    })
}
