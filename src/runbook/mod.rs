//! YAML runbooks: find and load them (vars, includes, validation with locations), and run
//! them through the one engine into the one report model.

pub mod builtin;
pub mod catalog;
mod check;
mod diagnose;
pub mod load;
mod parse;
mod plan;
mod refs;
pub mod run;
pub mod schema;
mod spots;

pub use catalog::{names, open, session_vars};
pub use check::drill_runner;
pub use diagnose::diagnose;
pub use load::{Kind, Runbook, Source, find, load};
pub use plan::{data, plan, show};
pub use run::{Selection, run};
