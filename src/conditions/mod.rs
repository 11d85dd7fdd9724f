//! Link conditions (delay, rate, loss, ...) on what leaves a lab node's interface.
//! STAND-IN module file of the datapath branch: replaced by the real one at merge.

pub mod datapath;
pub mod shaper;
pub mod spec;
