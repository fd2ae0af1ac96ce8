//! A moto S3 server for the tests, started on a free local port.

use object_store::ObjectStore;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

const INSTALL: &str = "the S3 tests need moto's server: install it with `pip install --user 'moto[server]'` \
                       (it provides `moto_server` and `python3 -m moto.server`)";

/// Installs moto's server with pip (into the user's site) if Python
/// cannot import it, once per test process: `cargo test` on a fresh
/// machine needs no step of its own.
fn install_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let importable = |m: &str| Command::new("python3").args(["-c", &format!("import {m}")]).output();
        if importable("moto.server").is_ok_and(|o| o.status.success()) {
            return;
        }
        let _ = Command::new("python3").args(["-m", "pip", "install", "--user", "--quiet", "moto[server]"]).status();
    });
}

/// A moto server on a free local port, stopped when dropped.
pub struct Moto {
    child: Child,
    /// Its URL.
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts the server and waits until it says it listens (reading its
    /// log: an event, not a delay).
    pub fn start() -> Moto {
        install_once();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let args = ["-H", "127.0.0.1", "-p", &port.to_string()].map(String::from);
        let mut tried = String::new();
        for (program, pre) in [("moto_server", &[][..]), ("python3", &["-m", "moto.server"][..])] {
            let spawned = Command::new(program)
                .args(pre)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn();
            let mut child = match spawned {
                Ok(child) => child,
                Err(e) => {
                    tried.push_str(&format!("{program}: {e}\n"));
                    continue;
                }
            };
            let mut log = BufReader::new(child.stderr.take().unwrap());
            let mut line = String::new();
            let running = loop {
                line.clear();
                if log.read_line(&mut line).unwrap_or(0) == 0 {
                    break false;
                }
                tried.push_str(&format!("{program}: {line}"));
                if line.contains("Running on") {
                    break true;
                }
            };
            if !running {
                let _ = child.kill();
                let _ = child.wait();
                continue;
            }
            // Keep reading its log so that it never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
            return Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
        }
        panic!("{INSTALL}; tried:\n{tried}");
    }

    /// Creates bucket `name` (moto needs no signature for it).
    pub fn create_bucket(&self, name: &str) {
        let host = self.endpoint.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(host).unwrap();
        write!(s, "PUT /{name} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "creating bucket {name}: {response}");
    }

    /// The storage options that point a job at it.
    pub fn options(&self) -> Vec<(&'static str, String)> {
        options(&self.endpoint)
    }

    /// The bucket as the test reads and damages it.
    pub fn store(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        let mut b = object_store::aws::AmazonS3Builder::new().with_bucket_name(bucket);
        for (k, v) in self.options() {
            b = b.with_config(k.parse().unwrap(), v);
        }
        Arc::new(b.build().unwrap())
    }
}

/// The storage options that point a job at the S3 server at `endpoint`.
pub fn options(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("aws_endpoint", endpoint.to_string()),
        ("aws_allow_http", "true".into()),
        ("aws_region", "us-east-1".into()),
        ("aws_access_key_id", "test".into()),
        ("aws_secret_access_key", "test".into()),
    ]
}
