//! Which request headers may carry the routing decision. The filter overwrites the
//! routing header on every request and the VirtualServices remove it before the app,
//! so a name that HTTP, Envoy or Istio give a meaning to would be destroyed in transit
//! (credentials, framing, tracing) or would let a client steer Envoy itself.

/// Why a header name cannot be the routing header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// Hop-by-hop: a proxy consumes it (RFC 9110 section 7.6.1, RFC 9112).
    HopByHop,
    /// Describes the message's body or framing (RFC 9110 sections 8 and 14).
    Representation,
    /// Names the target or the path the request took (Host, Forwarded, Envoy's
    /// x-forwarded-* and x-request-id).
    Routing,
    /// Carries credentials (RFC 9110 section 11, RFC 6265).
    Credentials,
    /// Conditional, range, caching or content negotiation (RFC 9110 sections 12, 13,
    /// RFC 9111).
    Negotiation,
    /// Distributed tracing context Envoy and Istio propagate (W3C, B3, Jaeger,
    /// Datadog, OpenTracing, SkyWalking, Google Cloud).
    Tracing,
    /// Read or written by Envoy (`x-envoy-*`) or Istio (`x-istio-*`).
    Proxy,
    /// Part of the gRPC protocol (`grpc-*`, `te: trailers`).
    Grpc,
    /// Fetch metadata and WebSocket handshake headers browsers send (`sec-*`).
    Browser,
}

impl Reserved {
    /// The reason, as a validation message says it.
    pub fn explain(self) -> &'static str {
        match self {
            Reserved::HopByHop => "a hop-by-hop header, which proxies consume",
            Reserved::Representation => "it describes the request body in HTTP",
            Reserved::Routing => "HTTP or Envoy route or trace the request by it",
            Reserved::Credentials => "it carries credentials in HTTP",
            Reserved::Negotiation => {
                "HTTP gives it a meaning (conditions, ranges, caching, negotiation)"
            }
            Reserved::Tracing => "tracing propagates it",
            Reserved::Proxy => "Envoy or Istio read or write it",
            Reserved::Grpc => "gRPC gives it a meaning",
            Reserved::Browser => "browsers set it (fetch metadata, WebSocket)",
        }
    }
}

/// Header names refused exactly (lowercase).
pub const RESERVED_NAMES: &[(&str, Reserved)] = &[
    ("connection", Reserved::HopByHop),
    ("keep-alive", Reserved::HopByHop),
    ("te", Reserved::HopByHop),
    ("trailer", Reserved::HopByHop),
    ("transfer-encoding", Reserved::HopByHop),
    ("upgrade", Reserved::HopByHop),
    ("content-length", Reserved::Representation),
    ("content-type", Reserved::Representation),
    ("content-encoding", Reserved::Representation),
    ("content-language", Reserved::Representation),
    ("content-location", Reserved::Representation),
    ("content-range", Reserved::Representation),
    ("content-md5", Reserved::Representation),
    ("digest", Reserved::Representation),
    ("host", Reserved::Routing),
    ("forwarded", Reserved::Routing),
    ("via", Reserved::Routing),
    ("max-forwards", Reserved::Routing),
    ("x-request-id", Reserved::Routing),
    ("x-client-trace-id", Reserved::Routing),
    ("x-real-ip", Reserved::Routing),
    ("authorization", Reserved::Credentials),
    ("cookie", Reserved::Credentials),
    ("set-cookie", Reserved::Credentials),
    ("www-authenticate", Reserved::Credentials),
    ("accept", Reserved::Negotiation),
    ("accept-encoding", Reserved::Negotiation),
    ("accept-language", Reserved::Negotiation),
    ("cache-control", Reserved::Negotiation),
    ("expect", Reserved::Negotiation),
    ("if-match", Reserved::Negotiation),
    ("if-modified-since", Reserved::Negotiation),
    ("if-none-match", Reserved::Negotiation),
    ("if-range", Reserved::Negotiation),
    ("if-unmodified-since", Reserved::Negotiation),
    ("origin", Reserved::Negotiation),
    ("pragma", Reserved::Negotiation),
    ("range", Reserved::Negotiation),
    ("referer", Reserved::Negotiation),
    ("user-agent", Reserved::Negotiation),
    ("traceparent", Reserved::Tracing),
    ("tracestate", Reserved::Tracing),
    ("baggage", Reserved::Tracing),
    ("b3", Reserved::Tracing),
    ("uber-trace-id", Reserved::Tracing),
    ("x-ot-span-context", Reserved::Tracing),
    ("x-cloud-trace-context", Reserved::Tracing),
    ("grpc-trace-bin", Reserved::Tracing),
    ("sw8", Reserved::Tracing),
];

/// Header name prefixes refused (lowercase).
pub const RESERVED_PREFIXES: &[(&str, Reserved)] = &[
    ("proxy-", Reserved::HopByHop),
    ("x-forwarded-", Reserved::Routing),
    ("x-b3-", Reserved::Tracing),
    ("x-datadog-", Reserved::Tracing),
    ("uberctx-", Reserved::Tracing),
    ("x-envoy-", Reserved::Proxy),
    ("x-istio-", Reserved::Proxy),
    ("grpc-", Reserved::Grpc),
    ("sec-", Reserved::Browser),
];

/// Why `name` (already lowercase) cannot be the routing header, if it cannot.
pub fn reserved(name: &str) -> Option<Reserved> {
    RESERVED_NAMES
        .iter()
        .find(|(reserved, _)| *reserved == name)
        .or_else(|| {
            RESERVED_PREFIXES
                .iter()
                .find(|(prefix, _)| name.starts_with(prefix))
        })
        .map(|(_, why)| *why)
}
