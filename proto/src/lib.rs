//! Generated gRPC types and stubs for the rdock daemons.

/// The image daemon's API.
pub mod image {
    pub mod v1 {
        tonic::include_proto!("rdock.image.v1");
    }
}

/// The runtime daemon's API.
pub mod runtime {
    pub mod v1 {
        tonic::include_proto!("rdock.runtime.v1");
    }
}

/// The network daemon's API.
pub mod net {
    pub mod v1 {
        tonic::include_proto!("rdock.net.v1");
    }
}

/// The per-container shim's API (Unix socket, internal to the runtime daemon).
pub mod shim {
    pub mod v1 {
        tonic::include_proto!("rdock.shim.v1");
    }
}
