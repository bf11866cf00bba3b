//! Istio mutual TLS between sidecars, as the stand-in builds it: auto mTLS on the
//! client's clusters (`transport_socket_matches` keyed on the endpoint's `tlsMode`),
//! the SNI that east-west gateways route on, and the inbound side that terminates it.
//!
//! istiod and istio-agent give every proxy its workload certificate and the mesh's root
//! over SDS, as the secrets `default` and `ROOTCA` (Istio 1.30.3
//! pilot/pkg/networking/core/cluster_tls.go `buildUpstreamClusterTLSContext`,
//! `ConstructSdsSecretConfig`). The stand-in generates one root CA per test process and a
//! leaf per SPIFFE identity (rcgen), and gives each Envoy the same two secrets as static
//! bootstrap secrets ([`bootstrap_secrets`]). The client validates the server the way
//! Istio's `ISTIO_MUTUAL` context does: the chain against `ROOTCA` and the subject
//! alternative names against the destination service's accounts
//! (`combined_validation_context`, `default_validation_context.match_subject_alt_names`
//! exact matches of `spiffe://cluster.local/ns/<ns>/sa/<account>`, from
//! `PushContext.ServiceAccounts`, pilot/pkg/model/push_context.go): a server presenting
//! another identity fails the handshake.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use serde_json::{Value, json};

use super::Workload;
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

/// The mesh's trust domain (MeshConfig `trustDomain` default).
pub const TRUST_DOMAIN: &str = "cluster.local";
/// The SDS name of a proxy's own certificate (`SDSDefaultResourceName`).
pub const SDS_DEFAULT: &str = "default";
/// The SDS name of the mesh's root (`SDSRootResourceName`).
pub const SDS_ROOT: &str = "ROOTCA";

/// `spiffe://<trust domain>/ns/<namespace>/sa/<service account>` (pkg/spiffe).
pub fn spiffe_id(namespace: &str, service_account: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}")
}

/// A workload certificate (PEM).
#[derive(Clone, Debug)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The mesh's certificates: one root CA and a leaf per SPIFFE identity, made on
/// first use (ECDSA P-256, a few ms each).
pub struct MeshCerts {
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
    leaves: Mutex<BTreeMap<String, Leaf>>,
}

impl MeshCerts {
    /// The process-wide mesh certificates.
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
        Ok(MeshCerts {
            ca_pem: ca.pem(),
            issuer: Issuer::new(ca_params, ca_key),
            leaves: Mutex::new(BTreeMap::new()),
        })
    }

    /// The workload certificate of `spiffe_id` (its only SAN), signed by the mesh CA.
    pub fn leaf(&self, spiffe_id: &str) -> Leaf {
        let mut leaves = self.leaves.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = leaves.get(spiffe_id) {
            return l.clone();
        }
        let make = || -> Result<Leaf, rcgen::Error> {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.subject_alt_names = vec![SanType::URI(spiffe_id.try_into()?)];
            let cert = params.signed_by(&key, &self.issuer)?;
            Ok(Leaf {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            })
        };
        let leaf = make().unwrap_or_else(|e| panic!("rcgen leaf for {spiffe_id}: {e}"));
        leaves.insert(spiffe_id.to_string(), leaf.clone());
        leaf
    }
}

/// The static secrets standing in for SDS in a proxy's bootstrap: `default` (the
/// proxy's own identity `spiffe_id`) and `ROOTCA`.
pub fn bootstrap_secrets(spiffe_id: &str) -> Value {
    let certs = MeshCerts::get();
    let leaf = certs.leaf(spiffe_id);
    json!([
        {
            "name": SDS_DEFAULT,
            "tls_certificate": {
                "certificate_chain": { "inline_string": leaf.cert_pem },
                "private_key": { "inline_string": leaf.key_pem },
            },
        },
        {
            "name": SDS_ROOT,
            "validation_context": { "trusted_ca": { "inline_string": certs.ca_pem } },
        },
    ])
}

/// The SPIFFE identities of a service's workloads (every cluster), sorted: the SANs a
/// client accepts from its servers (pods run in their Service's namespace).
pub fn service_accounts(workloads: &[Workload], host: &str) -> Vec<String> {
    let namespace = host.split('.').nth(1).unwrap_or_default();
    workloads
        .iter()
        .filter(|w| w.service == host)
        .map(|w| spiffe_id(namespace, &w.service_account))
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect()
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
pub fn transport_socket_matches_for(
    cluster: &str,
    groups: &[LocalityGroup],
    subject_alt_names: &[String],
) -> Option<Value> {
    if super::network::is_sni_dnat(cluster) {
        return None;
    }
    let any_mtls = groups
        .iter()
        .flat_map(|g| &g.endpoints)
        .any(|e| e.istio_mtls);
    let sni = sni_of_cluster(cluster)?;
    any_mtls.then(|| auto_mtls_socket_matches(&sni, subject_alt_names))
}

/// The `transport_socket_matches` istiod puts on a client cluster under auto mTLS
/// (`applyUpstreamTLSSettings`, pilot/pkg/networking/core/cluster_tls.go): endpoints
/// whose metadata says `tlsMode: istio` get Istio mTLS with `sni` (the client's own
/// certificate from SDS `default`; the server's chain checked against `ROOTCA` and its
/// SAN against `subject_alt_names`), every other endpoint plaintext (`tlsMode-disabled`).
pub fn auto_mtls_socket_matches(sni: &str, subject_alt_names: &[String]) -> Value {
    let sans: Vec<Value> = subject_alt_names
        .iter()
        .map(|s| json!({ "exact": s }))
        .collect();
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
                        "tls_certificate_sds_secret_configs": [{ "name": SDS_DEFAULT }],
                        "combined_validation_context": {
                            "default_validation_context": { "match_subject_alt_names": sans },
                            "validation_context_sds_secret_config": { "name": SDS_ROOT },
                        },
                        "alpn_protocols": CLIENT_ALPNS,
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
/// pilot/pkg/networking/core/listener_inbound.go): the workload certificate from SDS
/// `default`, client certificates required and checked against `ROOTCA` (the client's
/// identity is a matter for AuthorizationPolicies, not the handshake).
pub fn inbound_mtls_socket() -> Value {
    json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": true,
            "common_tls_context": {
                "tls_certificate_sds_secret_configs": [{ "name": SDS_DEFAULT }],
                "combined_validation_context": {
                    "default_validation_context": {},
                    "validation_context_sds_secret_config": { "name": SDS_ROOT },
                },
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
    fn certificates_are_pem_one_ca_and_one_leaf_per_identity() {
        let a = MeshCerts::get();
        assert!(std::ptr::eq(a, MeshCerts::get()));
        assert!(a.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let x = a.leaf(&spiffe_id("sample", "default"));
        assert!(x.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(x.key_pem.contains("PRIVATE KEY"));
        assert_eq!(x.cert_pem, a.leaf(&spiffe_id("sample", "default")).cert_pem);
        assert_ne!(x.cert_pem, a.leaf(&spiffe_id("sample", "other")).cert_pem);
    }
}
