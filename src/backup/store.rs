//! One idea, one file: where backups live: a local directory, or `s3://bucket/prefix` on
//! any S3-compatible store (through object_store; endpoint and region from config
//! `backup.s3` or the usual `AWS_*` variables, credentials from the environment only, never
//! printed).
//!
//! Layout, the same in both: `ID/data.tar.{zst,gz}` and `ID/manifest.json`. A backup is
//! complete, and listed, only once its manifest exists. Locally the manifest is written
//! inside `ID.partial/`, which is renamed when complete. On S3 a backup is made in a local
//! temporary directory, the data object is uploaded (multipart for big archives), and the
//! manifest object last; pruning deletes the manifest first. An ID with objects but no
//! manifest is the leftover of an interrupted run.

use super::{Error, Manifest};
use crate::values::Text;
use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Config `backup.s3`: what the environment does not say.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// `http://127.0.0.1:9000` for MinIO and friends (default: AWS, or `$AWS_ENDPOINT_URL`).
    pub endpoint: Option<Text>,
    /// Default `$AWS_REGION`/`$AWS_DEFAULT_REGION`, else us-east-1.
    pub region: Option<String>,
}

pub enum Store {
    Local(PathBuf),
    S3(S3Store),
}

pub struct S3Store {
    /// Its own runtime, driven from a thread of its own for each call, so the synchronous
    /// callers work inside or outside another runtime alike.
    runtime: tokio::runtime::Runtime,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// `s3://bucket/prefix`, for messages.
    url: String,
}

impl Store {
    /// The store named by `destination`; an error says what is wrong with it.
    pub fn open(destination: &Text, s3: &S3Config) -> Result<Store, Error> {
        if let Some(e) = unsupported_scheme(destination) {
            return Err(Error::Destination(e));
        }
        let Some(rest) = destination.as_str().strip_prefix("s3://") else {
            return Ok(Store::Local(PathBuf::from(destination.as_str())));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::Destination(format!(
                "{}: no bucket; write s3://BUCKET/PREFIX",
                destination.shown()
            )));
        }
        // A dead endpoint fails within a minute, not after object_store's default of
        // ten retries over three minutes; a stalled transfer is cut after 5 minutes.
        let retry = object_store::RetryConfig {
            max_retries: 3,
            retry_timeout: std::time::Duration::from_secs(60),
            ..Default::default()
        };
        let client = object_store::ClientOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(5))
            .with_timeout(std::time::Duration::from_secs(300));
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(retry)
            .with_client_options(client);
        if let Some(endpoint) = &s3.endpoint {
            builder = builder
                .with_endpoint(endpoint.as_str())
                .with_allow_http(endpoint.as_str().starts_with("http://"));
        } else if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
            builder = builder.with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(region) = &s3.region {
            builder = builder.with_region(region);
        }
        if let Ok(secret) = std::env::var("AWS_SECRET_ACCESS_KEY") {
            crate::redact::register(&secret);
        }
        crate::tls::install_crypto();
        let store = builder
            .build()
            .map_err(|e| Error::Destination(format!("{}: {e}", destination.shown())))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        Ok(Store::S3(S3Store {
            runtime,
            store: Arc::new(store),
            prefix: ObjectPath::from(prefix.trim_matches('/')),
            url: destination.shown().to_string(),
        }))
    }

    /// For messages: the directory or `s3://…` URL.
    pub fn shown(&self) -> String {
        match self {
            Store::Local(dir) => dir.display().to_string(),
            Store::S3(s3) => s3.url.clone(),
        }
    }

    /// The complete backups (those with a manifest), oldest first.
    pub fn list(&self) -> Result<Vec<Manifest>, Error> {
        Ok(self.scan()?.backups)
    }

    /// The complete backups, oldest first, and what looks like a backup but is not what
    /// its name says: a backup's identity is its directory (or object prefix) name, which
    /// must be the manifest's `id`, of the manifest's `set`. A copied directory or a forged
    /// manifest is never listed, never found by id, and never removed.
    pub fn scan(&self) -> Result<Listing, Error> {
        let found = match self {
            Store::Local(dir) => local_list(dir),
            Store::S3(s3) => s3.list()?,
        };
        let mut listing = Listing::default();
        for (name, manifest) in found {
            if manifest.id == name && set_of(&name) == Some(manifest.set.as_str()) {
                listing.backups.push(manifest);
            } else {
                listing.suspects.push(Suspect {
                    name,
                    id: manifest.id,
                    set: manifest.set,
                });
            }
        }
        listing
            .backups
            .sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(listing)
    }

    /// Ids of `set` left by interrupted runs (no manifest), to be removed by prune: only
    /// names `SET-YYYYMMDDTHHMMSSZ[-N]` of exactly this set (`app` never takes `app-db-…`).
    pub fn leftovers(&self, set: &str) -> Result<Vec<String>, Error> {
        match self {
            Store::Local(dir) => Ok(std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| {
                    n.strip_suffix(".partial")
                        .is_some_and(|id| set_of(id) == Some(set))
                })
                .collect()),
            Store::S3(s3) => {
                let (ids, complete) = s3.ids()?;
                Ok(ids
                    .difference(&complete)
                    .filter(|id| set_of(id) == Some(set))
                    .cloned()
                    .collect())
            }
        }
    }

    /// An id for a new backup of `set` at `now` that no backup uses yet.
    pub fn new_id(&self, set: &str, now: jiff::Timestamp) -> Result<String, Error> {
        let taken: BTreeSet<String> = match self {
            Store::Local(dir) => std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.trim_end_matches(".partial").to_string()
                })
                .collect(),
            Store::S3(s3) => s3.ids()?.0,
        };
        let stamp = now.strftime("%Y%m%dT%H%M%SZ").to_string();
        let mut id = format!("{set}-{stamp}");
        let mut n = 1;
        while taken.contains(&id) {
            n += 1;
            id = format!("{set}-{stamp}-{n}");
        }
        Ok(id)
    }

    /// Where to build a new backup: the destination itself, or (S3) a temporary directory
    /// whose finished backup [`Store::upload`] sends.
    pub fn staging(&self) -> Result<(PathBuf, Option<tempfile::TempDir>), Error> {
        match self {
            Store::Local(dir) => {
                // Made private when opsbook makes it; an existing one is left as it is.
                std::os::unix::fs::DirBuilderExt::mode(
                    std::fs::DirBuilder::new().recursive(true),
                    0o700,
                )
                .create(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                Ok((dir.clone(), None))
            }
            Store::S3(_) => {
                let temp = tempfile::Builder::new()
                    .prefix("opsbook-backup-")
                    .tempdir()
                    .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
                Ok((temp.path().to_path_buf(), Some(temp)))
            }
        }
    }

    /// Send a backup finished in `staging/ID` (S3; nothing to do locally): data first,
    /// manifest last. A failed upload removes what it sent.
    pub fn upload(&self, staging: &Path, manifest: &Manifest) -> Result<(), Error> {
        let Store::S3(s3) = self else {
            return Ok(());
        };
        let dir = staging.join(&manifest.id);
        let sent = s3
            .put_file(
                &dir.join(&manifest.archive),
                &s3.key(&manifest.id, &manifest.archive),
            )
            .and_then(|()| {
                // The stored object must be the archive the manifest describes before the
                // manifest makes it a backup.
                let key = s3.key(&manifest.id, &manifest.archive);
                let head = s3
                    .block_on(s3.store.head(&key))?
                    .map_err(|e| s3.failed(&format!("cannot check {key}"), e))?;
                if head.size != manifest.archive_bytes {
                    return Err(Error::Failed(s3.failed(
                        &format!("{key} holds {} bytes", head.size),
                        format!("{} were uploaded", manifest.archive_bytes),
                    )));
                }
                s3.put_file(
                    &dir.join("manifest.json"),
                    &s3.key(&manifest.id, "manifest.json"),
                )
            });
        if let Err(e) = sent {
            let _ = s3.remove(&manifest.id);
            return Err(e);
        }
        Ok(())
    }

    /// The directory holding `manifest`'s archive: the backup's own locally, or (S3) a
    /// temporary directory it was downloaded into, kept alive by the returned guard.
    pub fn fetch(
        &self,
        manifest: &Manifest,
    ) -> Result<(PathBuf, Option<tempfile::TempDir>), Error> {
        match self {
            Store::Local(dir) => Ok((dir.join(&manifest.id), None)),
            Store::S3(s3) => {
                let temp = tempfile::Builder::new()
                    .prefix("opsbook-fetch-")
                    .tempdir()
                    .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
                s3.get_file(
                    &s3.key(&manifest.id, &manifest.archive),
                    &temp.path().join(&manifest.archive),
                )?;
                Ok((temp.path().to_path_buf(), Some(temp)))
            }
        }
    }

    /// Delete a backup (or a leftover): its manifest first, so it stops being listed
    /// before its data goes.
    pub fn remove(&self, id: &str) -> Result<(), Error> {
        let plain = id.strip_suffix(".partial").unwrap_or(id);
        if set_of(plain).is_none() || id.contains('/') {
            return Err(Error::Failed(format!(
                "{id:?} is not the name of a backup; not removed"
            )));
        }
        match self {
            Store::Local(dir) => Ok(std::fs::remove_dir_all(dir.join(id))
                .map_err(|e| format!("cannot remove {id}: {e}"))?),
            Store::S3(s3) => s3.remove(id),
        }
    }
}

impl S3Store {
    /// Run `future` to completion on this store's runtime, from a thread of its own.
    fn block_on<F>(&self, future: F) -> Result<F::Output, Error>
    where
        F: std::future::Future + Send,
        F::Output: Send,
    {
        Ok(std::thread::scope(|scope| {
            scope
                .spawn(|| self.runtime.block_on(future))
                .join()
                .map_err(|_| format!("{}: the request thread stopped", self.url))
        })?)
    }

    fn key(&self, id: &str, name: &str) -> ObjectPath {
        self.prefix.clone().join(id).join(name)
    }

    fn failed(&self, what: &str, e: impl std::fmt::Display) -> String {
        crate::redact::mask(&format!("{}: {what}: {e}", self.url)).into_owned()
    }

    /// Every id under the prefix, and those with a manifest.
    fn ids(&self) -> Result<(BTreeSet<String>, BTreeSet<String>), Error> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let objects: Vec<_> = self.block_on(self.store.list(prefix).collect::<Vec<_>>())?;
        let mut ids = BTreeSet::new();
        let mut complete = BTreeSet::new();
        for object in objects {
            let object = object.map_err(|e| self.failed("cannot list", e))?;
            let mut parts = object
                .location
                .prefix_match(&self.prefix)
                .into_iter()
                .flatten();
            let (Some(id), Some(name)) = (parts.next(), parts.next()) else {
                continue;
            };
            let id = id.as_ref().to_string();
            if name.as_ref() == "manifest.json" {
                complete.insert(id.clone());
            }
            ids.insert(id);
        }
        Ok((ids, complete))
    }

    fn list(&self) -> Result<Vec<(String, Manifest)>, Error> {
        let (_, complete) = self.ids()?;
        let mut found = Vec::new();
        for id in complete {
            let key = self.key(&id, "manifest.json");
            let bytes = self
                .block_on(async { self.store.get(&key).await?.bytes().await })?
                .map_err(|e| self.failed(&format!("cannot read {key}"), e))?;
            // An unreadable manifest is not a backup (as locally).
            if let Ok(manifest) = serde_json::from_slice::<Manifest>(&bytes) {
                found.push((id, manifest));
            }
        }
        Ok(found)
    }

    /// Upload a local file, streaming: one request when small, multipart when large.
    fn put_file(&self, file: &Path, key: &ObjectPath) -> Result<(), Error> {
        let upload = async {
            let mut input = tokio::fs::File::open(file).await?;
            let mut out = object_store::buffered::BufWriter::with_capacity(
                self.store.clone(),
                key.clone(),
                8 << 20,
            );
            tokio::io::copy(&mut input, &mut out).await?;
            tokio::io::AsyncWriteExt::shutdown(&mut out).await?;
            Ok::<(), std::io::Error>(())
        };
        Ok(self
            .block_on(upload)?
            .map_err(|e| self.failed(&format!("cannot upload {key}"), e))?)
    }

    /// Download an object into a local file, streaming.
    fn get_file(&self, key: &ObjectPath, file: &Path) -> Result<(), Error> {
        let download = async {
            let mut stream = self
                .store
                .get(key)
                .await
                .map_err(std::io::Error::other)?
                .into_stream();
            let mut out = tokio::fs::File::create(file).await?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(std::io::Error::other)?;
                tokio::io::AsyncWriteExt::write_all(&mut out, &chunk).await?;
            }
            tokio::io::AsyncWriteExt::flush(&mut out).await?;
            Ok::<(), std::io::Error>(())
        };
        Ok(self
            .block_on(download)?
            .map_err(|e| self.failed(&format!("cannot download {key}"), e))?)
    }

    fn remove(&self, id: &str) -> Result<(), Error> {
        let manifest = self.key(id, "manifest.json");
        match self.block_on(self.store.delete(&manifest))? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                return Err(Error::Failed(
                    self.failed(&format!("cannot delete {manifest}"), e),
                ));
            }
        }
        let under = self.prefix.clone().join(id);
        let objects: Vec<_> = self.block_on(self.store.list(Some(&under)).collect::<Vec<_>>())?;
        for object in objects {
            let object = object.map_err(|e| self.failed("cannot list", e))?;
            match self.block_on(self.store.delete(&object.location))? {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    return Err(Error::Failed(
                        self.failed(&format!("cannot delete {}", object.location), e),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The complete backups in the local directory `dest` (those with a manifest), each with
/// its directory's name, in no order.
fn local_list(dest: &Path) -> Vec<(String, Manifest)> {
    std::fs::read_dir(dest)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if name.ends_with(".partial") {
                return None;
            }
            let text = std::fs::read_to_string(e.path().join("manifest.json")).ok()?;
            Some((name, serde_json::from_str(&text).ok()?))
        })
        .collect()
}

/// What a store holds: backups, and directories (or prefixes) with a manifest that does
/// not match their name.
#[derive(Debug, Default)]
pub struct Listing {
    pub backups: Vec<Manifest>,
    pub suspects: Vec<Suspect>,
}

/// A directory or object prefix whose manifest says another id or set than its name.
#[derive(Debug)]
pub struct Suspect {
    pub name: String,
    pub id: String,
    pub set: String,
}

impl Suspect {
    /// Whether it concerns `set`, by its name or by what its manifest claims.
    pub fn concerns(&self, set: &str) -> bool {
        self.set == set || set_of(&self.name) == Some(set)
    }
}

impl std::fmt::Display for Suspect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: its manifest says id {:?} of set {:?}, not what its name says; not a backup \
             of its own, left alone (remove or rename it by hand)",
            self.name, self.id, self.set
        )
    }
}

/// The set of a backup id `SET-YYYYMMDDTHHMMSSZ` or `SET-YYYYMMDDTHHMMSSZ-N`, or `None`
/// for a name that is not a backup id.
pub fn set_of(id: &str) -> Option<&str> {
    let stamped = |s: &str| -> Option<usize> {
        let b = s.as_bytes();
        let n = b.len();
        if n < 17 {
            return None;
        }
        let stamp = &b[n - 16..];
        let digits = |r: std::ops::Range<usize>| stamp[r].iter().all(u8::is_ascii_digit);
        let ok = b[n - 17] == b'-'
            && digits(0..8)
            && stamp[8] == b'T'
            && digits(9..15)
            && stamp[15] == b'Z';
        ok.then_some(n - 17)
    };
    let end = stamped(id).or_else(|| {
        let (rest, n) = id.rsplit_once('-')?;
        let counter = !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit());
        if counter { stamped(rest) } else { None }
    })?;
    let set = &id[..end];
    (!set.is_empty() && !set.contains('/') && set != "." && set != "..").then_some(set)
}

/// The error for a destination with a scheme opsbook does not write to (`sftp://…`), which
/// would otherwise become a local folder named `sftp:`.
pub fn unsupported_scheme(destination: &Text) -> Option<String> {
    let text = destination.as_str();
    let (scheme, _) = text.split_once("://")?;
    let is_scheme = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme || scheme == "s3" {
        return None;
    }
    Some(format!(
        "backup.destination: {}: opsbook does not support `{scheme}://` destinations; \
         supported: a local directory (an absolute or relative path) or s3://BUCKET/PREFIX",
        destination.shown()
    ))
}

#[cfg(test)]
mod tests {
    use super::set_of;

    #[test]
    fn a_backup_id_names_its_set_exactly() {
        assert_eq!(set_of("app-20250101T000000Z"), Some("app"));
        assert_eq!(set_of("app-db-20250101T000000Z-2"), Some("app-db"));
        assert_eq!(set_of("app-20250101T000000Z.bak"), None);
        assert_eq!(set_of("-20250101T000000Z"), None);
        assert_eq!(set_of("/etc"), None);
        assert_eq!(set_of("app-2025010T000000Z"), None);
    }
}
