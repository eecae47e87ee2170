//! The action steps: thin adapters from a runbook step to one library action (rotate,
//! archive, back up, prune, verify, drill, restore, clean up), plus `manual`. Each file is one step kind.

pub mod archive;
pub mod backup;
pub mod cleanup;
pub mod drill;
pub mod manual;
pub mod prune;
pub mod restore;
pub mod rotate;
pub mod verify;
