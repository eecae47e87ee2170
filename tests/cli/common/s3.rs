//! A real S3-compatible server on 127.0.0.1 for one test: moto's standalone server (from
//! PyPI, installed by `scripts/test` into the virtualenv `target/test-venv`), killed on drop. `put`/`get` (through boto3, which
//! moto brings) let tests plant, read and tamper with objects behind opsbook's back.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The python that has moto: `$OPSBOOK_TEST_PYTHON` (exported by `scripts/test`), else the
/// virtualenv `scripts/test` makes under `target/`, else `python3` on PATH.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("OPSBOOK_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("python3")
}

pub struct S3Server {
    child: Child,
    pub port: u16,
}

impl S3Server {
    /// Start the server and create `bucket`.
    pub fn start(bucket: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(python())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (run `bash scripts/test` to install moto)",
                    python().display()
                )
            });
        let server = S3Server { child, port };
        let started = std::time::Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed().as_secs() < 60,
                "moto did not start on port {port} (is `moto[server]` installed?)"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        server.boto(&format!("s3.create_bucket(Bucket={bucket:?})"), b"");
        server
    }

    /// Run boto3 code with `s3` a client of this server and `data` the bytes given;
    /// what it writes to stdout.
    fn boto(&self, code: &str, data: &[u8]) -> Vec<u8> {
        let script = format!(
            "import sys, boto3\ns3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\ndata = sys.stdin.buffer.read()\n{code}\n",
            self.endpoint()
        );
        let mut child = Command::new(python())
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", python().display()));
        child.stdin.take().unwrap().write_all(data).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Store `data` at `bucket`/`key`.
    pub fn put(&self, bucket: &str, key: &str, data: &[u8]) {
        self.boto(
            &format!("s3.put_object(Bucket={bucket:?}, Key={key:?}, Body=data)"),
            data,
        );
    }

    /// The object at `bucket`/`key`, if there is one.
    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let out = self.boto(
            &format!(
                "try:\n    body = s3.get_object(Bucket={bucket:?}, Key={key:?})['Body'].read()\n    sys.stdout.buffer.write(b'Y' + body)\nexcept s3.exceptions.NoSuchKey:\n    sys.stdout.buffer.write(b'N')"
            ),
            b"",
        );
        (out.first() == Some(&b'Y')).then(|| out[1..].to_vec())
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
