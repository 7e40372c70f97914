//! Talking to a shim: a gRPC client over its Unix socket (no TLS; the socket
//! sits in a root-only directory).

use std::path::Path;

use hyper_util::rt::TokioIo;
use rdock_proto::shim::v1::shim_client::ShimClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use super::Error;

/// Connects to the shim serving on `socket`. Fails at once when no shim is
/// listening there (the container exited and its shim left: read its
/// `exit.json`).
pub async fn connect(socket: &Path) -> Result<ShimClient<Channel>, Error> {
    let path = socket.to_path_buf();
    // The URI is required by the API and ignored: the connector dials the
    // socket.
    let channel = Endpoint::from_static("http://[::]:50051")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .map_err(|source| Error::Connect {
            socket: socket.to_path_buf(),
            source,
        })?;
    Ok(ShimClient::new(channel))
}
