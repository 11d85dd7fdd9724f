//! Placeholder until the OVSDB client lands.
/// OVS errors.
#[derive(Debug, thiserror::Error)]
pub enum OvsError {
    /// not available
    #[error("open vswitch support is not built yet")]
    Unavailable,
}
