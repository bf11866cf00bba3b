//! Istio mutual TLS between sidecars, as the stand-in builds it: auto mTLS on the
//! client's clusters (`transport_socket_matches` keyed on the endpoint's `tlsMode`),
//! the SNI that east-west gateways route on, and the inbound side that terminates it.
//!
//! istiod hands every proxy a workload certificate over SDS from the mesh CA; the
//! stand-in generates one CA and one workload leaf per test process (rcgen) and inlines
//! them. The client does **not** verify the server's certificate: mTLS identity is
//! not what geolb tests — what matters here is that the bytes are TLS with Istio's SNI
//! and ALPN, so an east-west gateway can route them without terminating them
//! (AUTO_PASSTHROUGH) and the destination sidecar must terminate them.

use std::sync::OnceLock;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use serde_json::{Value, json};

use super::endpoints::LocalityGroup;

/// `allIstioMtlsALPNs` (pilot/pkg/networking/core/listener.go): what an east-west
/// gateway's AUTO_PASSTHROUGH filter chains and a sidecar's inbound mTLS chain accept.
pub const ISTIO_MTLS_ALPNS: [&str; 5] = [
    "istio",
    "istio-peer-exchange",
    "istio-http/1.0",
    "istio-http/1.1",
    "istio-h2",
];

/// `util.ALPNInMeshWithMxc` (pilot/pkg/networking/util/util.go): what a client sidecar
/// offers on an HTTP/1.1 in-mesh cluster with Istio mTLS.
pub const CLIENT_ALPNS: [&str; 2] = ["istio-peer-exchange", "istio"];

/// The endpoint metadata key and value auto mTLS matches on (`tlsMode: istio`,
/// `istioMtlsTransportSocketMatch` in pilot/pkg/networking/core/cluster_tls.go; the
/// endpoints carry it from [`super::endpoints::load_assignment`]).
pub const TLS_MODE_KEY: &str = "tlsMode";
pub const TLS_MODE_ISTIO: &str = "istio";

/// The mesh's certificates: one CA, one workload leaf every proxy presents (PEM).
#[derive(Clone, Debug)]
pub struct MeshCerts {
    pub ca_pem: String,
    pub leaf_pem: String,
    pub leaf_key_pem: String,
}

/// The SPIFFE identity in the leaf (Istio's form; nobody checks it here).
pub const LEAF_SPIFFE_ID: &str = "spiffe://cluster.local/ns/sample/sa/default";

impl MeshCerts {
    /// The process-wide mesh certificates, generated on first use (ECDSA P-256, ~ms).
    pub fn get() -> &'static MeshCerts {
        static CERTS: OnceLock<MeshCerts> = OnceLock::new();
        CERTS.get_or_init(|| MeshCerts::generate().unwrap_or_else(|e| panic!("rcgen: {e}")))
    }

    fn generate() -> Result<MeshCerts, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "geolb-e2e mesh root CA");
        let ca = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate()?;
        let mut leaf_params = CertificateParams::new(Vec::<String>::new())?;
        leaf_params.subject_alt_names = vec![SanType::URI(LEAF_SPIFFE_ID.try_into()?)];
        let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;
        Ok(MeshCerts {
            ca_pem: ca.pem(),
            leaf_pem: leaf.pem(),
            leaf_key_pem: leaf_key.serialize_pem(),
        })
    }

    fn tls_certificate(&self) -> Value {
        json!({
            "certificate_chain": { "inline_string": self.leaf_pem },
            "private_key": { "inline_string": self.leaf_key_pem },
        })
    }
}

/// The SNI of an in-mesh cluster, `outbound_.PORT_.SUBSET_.HOST`
/// (`model.BuildDNSSrvSubsetKey`, pilot/pkg/model/service.go): the client sets it
/// (cluster_builder.go `istioMtlsSni`), east-west gateways route on it, and their
/// SNI-DNAT clusters carry it as their name. No subset = empty (`outbound_.5000_._.h`).
pub fn sni(port: u16, subset: &str, host: &str) -> String {
    format!("outbound_.{port}_.{subset}_.{host}")
}

/// The auto-mTLS SNI of an outbound cluster `outbound|PORT|SUBSET|HOST`, `None` for
/// any other name.
pub fn sni_of_cluster(cluster: &str) -> Option<String> {
    let mut parts = cluster.split('|');
    let (Some("outbound"), Some(port), Some(subset), Some(host), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    Some(sni(port.parse().ok()?, subset, host))
}

/// Auto mTLS for one translated cluster: the socket matches when one of its endpoints
/// has `tlsMode: istio`, with the SNI of the cluster's name; `None` for SNI-DNAT
/// clusters (no TLS origination: the client's mTLS passes through) and for clusters
/// whose endpoints are all plaintext. istiod adds the matches to every in-mesh cluster
/// under auto mTLS; with only plaintext endpoints they all take `tlsMode-disabled`, so
/// leaving them out changes nothing on the wire.
pub fn transport_socket_matches_for(cluster: &str, groups: &[LocalityGroup]) -> Option<Value> {
    if super::network::is_sni_dnat(cluster) {
        return None;
    }
    let any_mtls = groups
        .iter()
        .flat_map(|g| &g.endpoints)
        .any(|e| e.istio_mtls);
    let sni = sni_of_cluster(cluster)?;
    any_mtls.then(|| auto_mtls_socket_matches(&sni))
}

/// The `transport_socket_matches` istiod puts on a client cluster under auto mTLS
/// (`applyUpstreamTLSSettings`, pilot/pkg/networking/core/cluster_tls.go): endpoints
/// whose metadata says `tlsMode: istio` get Istio mTLS with `sni`, every other
/// endpoint plaintext (`tlsMode-disabled`).
pub fn auto_mtls_socket_matches(sni: &str) -> Value {
    let certs = MeshCerts::get();
    json!([
        {
            "name": "tlsMode-istio",
            "match": { TLS_MODE_KEY: TLS_MODE_ISTIO },
            "transport_socket": {
                "name": "envoy.transport_sockets.tls",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                    "sni": sni,
                    "common_tls_context": {
                        "tls_certificates": [certs.tls_certificate()],
                        "alpn_protocols": CLIENT_ALPNS,
                        // No validation_context: the server's identity is not checked
                        // (see the module doc).
                    },
                },
            },
        },
        {
            "name": "tlsMode-disabled",
            "match": {},
            "transport_socket": {
                "name": "envoy.transport_sockets.raw_buffer",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer",
                },
            },
        },
    ])
}

/// The inbound side of Istio mTLS (a sidecar's `virtualInbound` mTLS filter chain,
/// pilot/pkg/networking/core/listener_inbound.go): the workload certificate, client
/// certificates required and checked against the mesh CA.
pub fn inbound_mtls_socket() -> Value {
    let certs = MeshCerts::get();
    json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": true,
            "common_tls_context": {
                "tls_certificates": [certs.tls_certificate()],
                "validation_context": { "trusted_ca": { "inline_string": certs.ca_pem } },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_has_istios_form_with_an_empty_default_subset() {
        assert_eq!(
            sni(5000, "", "helloworld.sample.svc.cluster.local"),
            "outbound_.5000_._.helloworld.sample.svc.cluster.local"
        );
        assert_eq!(
            sni(
                5000,
                "geolb-cn-hangzhou",
                "helloworld.sample.svc.cluster.local"
            ),
            "outbound_.5000_.geolb-cn-hangzhou_.helloworld.sample.svc.cluster.local"
        );
    }

    #[test]
    fn outbound_cluster_names_map_to_their_sni() {
        assert_eq!(
            sni_of_cluster("outbound|5000|v1|h.s.svc.cluster.local").as_deref(),
            Some("outbound_.5000_.v1_.h.s.svc.cluster.local")
        );
        assert_eq!(sni_of_cluster("inbound|5000||"), None);
        assert_eq!(sni_of_cluster("outbound|x||h"), None);
    }

    #[test]
    fn certificates_are_pem_and_generated_once() {
        let a = MeshCerts::get();
        let b = MeshCerts::get();
        assert!(std::ptr::eq(a, b));
        assert!(a.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(a.leaf_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(a.leaf_key_pem.contains("PRIVATE KEY"));
        assert_ne!(a.ca_pem, a.leaf_pem);
    }
}
