//! Shared helpers for the geolb package's integration tests (`mod support;`).
#![allow(dead_code)]

pub mod crd;
pub mod kustomize;
