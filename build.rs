//! Compiles the wire contract in `proto/` with `protox` (no system `protoc` needed) and keeps
//! the encoded descriptor set for server reflection.

use std::path::PathBuf;

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/creditgate/v1/types.proto",
        "proto/creditgate/v1/credit.proto",
        "proto/creditgate/v1/account.proto",
        "proto/creditgate/v1/catalog.proto",
        "proto/creditgate/v1/webhooks.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(files, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("creditgate_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Sorted maps encode deterministically, so a request's bytes fingerprint it.
        .btree_map(".")
        .compile_fds(descriptors)?;
    Ok(())
}
