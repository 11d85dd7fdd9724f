//! Placeholder until the ethtool module lands.
