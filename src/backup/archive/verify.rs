//! Checking a backup against its manifest by streaming its archive, without extracting it.

use super::*;

/// Stream the archive of `manifest` in `dir` and compare every file with the manifest: the
/// problems found, each naming its file (empty when the backup checks out).
pub fn verify(dir: &Path, manifest: &Manifest) -> Vec<String> {
    let path = dir.join(&manifest.archive);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) => return vec![format!("cannot read {}: {e}", path.display())],
    };
    let file = std::io::BufReader::with_capacity(1 << 20, file);
    let reader = match crate::codec::decoder(manifest.compression.codec(), file) {
        Ok(reader) => reader,
        Err(e) => return vec![format!("{} is damaged: {e}", path.display())],
    };
    let mut expected: BTreeMap<Vec<u8>, &FileEntry> = BTreeMap::new();
    let mut problems = Vec::new();
    for f in &manifest.files {
        match f.path_bytes() {
            Some(bytes) => {
                expected.insert(bytes, f);
            }
            None => problems.push(format!("{}: the manifest's path_hex is malformed", f.path)),
        }
    }
    // Directories and symlinks too, when the manifest lists them (every backup made since
    // it does): a changed link target or an extra entry would pass here and then make
    // the restore refuse the whole backup.
    let mut expected_others: BTreeMap<Vec<u8>, &OtherEntry> = BTreeMap::new();
    if manifest.listing {
        for o in &manifest.others {
            match o.path_bytes() {
                Some(bytes) => {
                    expected_others.insert(bytes, o);
                }
                None => {
                    problems.push(format!("{}: the manifest's path_hex is malformed", o.path));
                }
            }
        }
    }
    let mut archive = tar::Archive::new(reader);
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(e) => return vec![format!("{} is damaged: {e}", path.display())],
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                problems.push(format!("{} is damaged: {e}", path.display()));
                break;
            }
        };
        let kind = entry.header().entry_type();
        if kind != tar::EntryType::Regular {
            if manifest.listing {
                let mut bytes = entry.path_bytes().into_owned();
                while bytes.len() > 1 && bytes.ends_with(b"/") {
                    bytes.pop();
                }
                let name = String::from_utf8_lossy(&bytes).into_owned();
                let target = entry.link_name_bytes().map(|t| t.into_owned());
                match expected_others.remove(&bytes) {
                    None => {
                        problems.push(format!("{name}: in the archive but not in the manifest"))
                    }
                    Some(want) => {
                        let same = match kind {
                            tar::EntryType::Directory => want.target.is_none(),
                            tar::EntryType::Symlink => {
                                want.target.is_some() && target == want.target_bytes()
                            }
                            _ => false,
                        };
                        if !same {
                            problems.push(format!(
                                "{name}: does not match the manifest (kind or link target)"
                            ));
                        }
                    }
                }
            }
            continue;
        }
        // Names compare byte for byte; the lossy text is only for messages.
        let bytes = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&bytes).into_owned();
        let (len, digest) = match sha256_of(&mut entry) {
            Ok(found) => found,
            Err(e) => {
                problems.push(format!("{name}: cannot be read from the archive: {e}"));
                continue;
            }
        };
        match expected.remove(&bytes) {
            None => problems.push(format!("{name}: in the archive but not in the manifest")),
            Some(want) if want.size != len || want.sha256 != digest => {
                problems.push(format!(
                    "{name}: does not match the manifest (size or SHA-256)"
                ));
            }
            Some(_) => {}
        }
    }
    for missing in expected.values() {
        problems.push(format!(
            "{}: in the manifest but missing from the archive",
            missing.path
        ));
    }
    for missing in expected_others.values() {
        problems.push(format!(
            "{}: in the manifest but missing from the archive",
            missing.path
        ));
    }
    problems
}
