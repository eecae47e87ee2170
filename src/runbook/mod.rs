//! YAML runbooks: find and load them (vars, includes, validation with locations), and run
//! them through the one engine into the one report model.

pub mod builtin;
pub mod load;
pub mod run;
pub mod schema;

pub use load::{Runbook, Source, find, load};
pub use run::{Selection, run};
