//! Compiles the rdock protos with protox, so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "rdock/image/v1/image.proto",
        "rdock/runtime/v1/runtime.proto",
        "rdock/net/v1/net.proto",
        "rdock/shim/v1/shim.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["."])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
