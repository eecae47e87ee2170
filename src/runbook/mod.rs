//! YAML runbooks: load (vars, includes, validation with locations), and run.

pub mod condition;
