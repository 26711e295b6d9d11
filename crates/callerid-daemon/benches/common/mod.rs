//! The baseline relay both gate benches compare against: what any tokio proxy does,
//! without identification, policy, audit or metrics.

use std::path::PathBuf;
use std::sync::Arc;

/// Spawns `workers` accept loops on `listener`; each connection is relayed both ways
/// to a fresh connection to `backend` with `copy_bidirectional`, then closed.
pub(crate) fn spawn_tokio_relay(
    listener: Arc<tokio::net::UnixListener>,
    backend: PathBuf,
    workers: usize,
) {
    for _ in 0..workers {
        let l = listener.clone();
        let backend = backend.clone();
        tokio::spawn(async move {
            loop {
                let (mut c, _) = l.accept().await.unwrap();
                let backend = backend.clone();
                tokio::spawn(async move {
                    let mut b = tokio::net::UnixStream::connect(&backend).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut b).await;
                });
            }
        });
    }
}
