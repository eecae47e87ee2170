//! Builds the list of shipped runbooks: every `runbooks/*.yaml` file (not the examples) is
//! built into the binary under its file stem, so adding a runbook is adding its file.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=runbooks");
    let dir = Path::new("runbooks");
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".yaml"))
            .collect(),
        Err(e) => {
            println!("cargo:warning=runbooks/ unreadable: {e}");
            Vec::new()
        }
    };
    names.sort();
    let mut out = String::from("&[\n");
    for file in &names {
        let stem = file.trim_end_matches(".yaml");
        println!("cargo:rerun-if-changed=runbooks/{file}");
        let _ = writeln!(
            out,
            "    ({stem:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/runbooks/{file}\"))),"
        );
    }
    out.push(']');
    let Some(target) = std::env::var_os("OUT_DIR") else {
        println!("cargo:warning=OUT_DIR is not set");
        std::process::exit(1);
    };
    let path = Path::new(&target).join("builtin_runbooks.rs");
    if let Err(e) = std::fs::write(&path, out) {
        println!("cargo:warning=cannot write {}: {e}", path.display());
        std::process::exit(1);
    }
}
