//! Generated types and services of the `creditgate.v1` wire contract.

#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    missing_debug_implementations
)]
pub mod v1 {
    tonic::include_proto!("creditgate.v1");
}

/// Encoded descriptor set of `proto/`, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/creditgate_descriptor.bin"));
