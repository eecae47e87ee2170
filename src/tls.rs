//! TLS set-up shared by every client (HTTP probes, S3 storage, webhooks and mail).

/// reqwest is built without a default crypto provider; ring is ours.
pub fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
