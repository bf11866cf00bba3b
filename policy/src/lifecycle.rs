//! What a proxy does with a plugin configuration that does not compile.
//!
//! Envoy 1.40 hands a configuration to the filter in two kinds of VM, and a refusal
//! (`on_configure` returning false) means something different in each:
//!
//! * a fresh VM that has never applied a configuration: Envoy's *configuration
//!   canary*, cloned for each new configuration and destroyed right after (or a
//!   worker's first VM after a module change). Its refusal makes Envoy reject the
//!   update (ECDS `update_rejected`) and keep the previous filter configuration.
//! * a VM that already applied one (the main thread's or a worker's, reused for every
//!   configuration of the module): Envoy only asks it after the canary accepted the
//!   configuration, or after it skipped the canary because proxy-wasm cached the
//!   canary's earlier verdict. A refusal there does not reject the update: it marks
//!   the VM failed, and from then on every request skips the filter and every later
//!   update is rejected (measured: `tests/tests/policy_updates.rs`).

/// What to do with a configuration that does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidConfig {
    /// No policy was ever accepted in this proxy: accept the configuration, route
    /// nothing, strip client routing headers. Refusing would make Envoy exit at
    /// start-up (static configuration) or answer 500 to every request (ECDS).
    PassThrough,
    /// Refuse (`on_configure` false): Envoy rejects the update and the previous
    /// policy keeps serving.
    Refuse,
    /// Accept, but keep routing with the policy this VM applied last: the update is
    /// already Envoy's, and a refusal here would take the filter down.
    KeepServing,
}

/// The answer to an invalid configuration. `accepted_before`: some VM of this proxy
/// accepted a valid policy before (remembered in shared data). `vm_has_served`: this
/// VM applied a valid policy before (so it is not Envoy's canary).
pub fn on_invalid_config(accepted_before: bool, vm_has_served: bool) -> InvalidConfig {
    match (accepted_before || vm_has_served, vm_has_served) {
        (false, _) => InvalidConfig::PassThrough,
        (true, false) => InvalidConfig::Refuse,
        (true, true) => InvalidConfig::KeepServing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_comes_only_from_a_vm_that_never_served() {
        use InvalidConfig::*;
        let table = [
            // (accepted before in the proxy, this VM served) -> answer
            ((false, false), PassThrough),
            ((true, false), Refuse),
            ((true, true), KeepServing),
            // A VM that served implies the proxy accepted, even if shared data lost it.
            ((false, true), KeepServing),
        ];
        for ((accepted, served), expected) in table {
            assert_eq!(
                on_invalid_config(accepted, served),
                expected,
                "{accepted} {served}"
            );
        }
    }
}
