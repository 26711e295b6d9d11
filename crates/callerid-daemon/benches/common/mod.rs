//! What both gate benches share: the runtime the daemon under test runs on, and the
//! baseline relay they compare against (what any tokio proxy does, without
//! identification, policy, audit or metrics).

use std::path::PathBuf;
use std::sync::Arc;

/// A two-worker runtime that lives as long as the bench process (the daemon and the
/// baselines keep running on it between divan samples).
pub(crate) fn leaked_runtime() -> &'static tokio::runtime::Runtime {
    Box::leak(Box::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    ))
}

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
