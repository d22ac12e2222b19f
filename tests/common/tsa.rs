//! A real RFC 3161 timestamp authority on 127.0.0.1 for tests: openssl's `ts -reply` signs
//! with a TSA certificate that a test CA issued, both made fresh for each authority, behind a
//! small HTTP handler (one thread per connection). It can be taken down (503) and back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub struct TestTsa {
    pub addr: SocketAddr,
    /// The test CA's certificate (PEM): what markwatch checks tokens against.
    pub ca: PathBuf,
    dir: tempfile::TempDir,
    down: Arc<AtomicBool>,
    /// Requests answered with a token.
    pub granted: Arc<AtomicUsize>,
}

/// `openssl`, when installed: the TSA needs it.
pub fn openssl() -> Option<PathBuf> {
    Command::new("openssl")
        .arg("version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| PathBuf::from("openssl"))
}

fn run(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestTsa {
    pub fn start() -> TestTsa {
        let dir = tempfile::tempdir().expect("tsa dir");
        let d = dir.path();
        let rsa = ["-newkey", "rsa:2048", "-nodes"];
        run(
            d,
            &[
                &["req", "-x509"][..],
                &rsa,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "30",
                    "-subj",
                    "/CN=markwatch test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
        );
        run(
            d,
            &[
                &["req"][..],
                &rsa,
                &[
                    "-keyout",
                    "tsa.key",
                    "-out",
                    "tsa.csr",
                    "-subj",
                    "/CN=markwatch test TSA",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            d.join("tsa.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=critical,timeStamping\n",
        )
        .unwrap();
        run(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "tsa.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "tsa.crt",
                "-days",
                "30",
                "-extfile",
                "tsa.ext",
            ],
        );
        std::fs::write(
            d.join("ts.cnf"),
            format!(
                "[ tsa ]\ndefault_tsa = tsa1\n[ tsa1 ]\ndir = {}\nserial = $dir/serial\n\
                 signer_cert = $dir/tsa.crt\nsigner_key = $dir/tsa.key\nsigner_digest = sha256\n\
                 default_policy = 1.2.3.4.1\ndigests = sha256, sha384, sha512\n\
                 accuracy = secs:1\nordering = no\ntsa_name = yes\n\
                 ess_cert_id_chain = no\ness_cert_id_alg = sha256\n",
                d.display()
            ),
        )
        .unwrap();
        std::fs::write(d.join("serial"), "01\n").unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind tsa");
        let addr = listener.local_addr().unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let granted = Arc::new(AtomicUsize::new(0));
        let (work, down2, granted2) = (d.to_owned(), down.clone(), granted.clone());
        std::thread::spawn(move || {
            // One request at a time: openssl keeps its serial in one file.
            for stream in listener.incoming().flatten() {
                if let Err(e) = answer(stream, &work, &down2, &granted2) {
                    eprintln!("test TSA: {e}");
                }
            }
        });
        TestTsa {
            addr,
            ca: d.join("ca.pem"),
            dir,
            down,
            granted,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/tsa", self.addr)
    }

    /// Writes `markwatch.toml` into `s`: jd at the fixture server, unpaced, item pages over
    /// HTTP, the chain stamped by this authority after every run. Returns its path.
    pub fn jd_config(&self, s: &super::Scratch, fixtures: &super::Running) -> String {
        let text = format!(
            "[crawl]\ndefinitions = \"{}\"\n\
             [platforms.jd]\nbase_url = \"{}\"\nlogin_required = false\nfetch = \"http\"\n\
             requests_per_second = 0\n\
             [evidence.tsa]\nurl = \"{}\"\nca = \"{}\"\ninterval_secs = 0\n",
            super::repo().join("crawlers").display(),
            fixtures.base("jd"),
            self.url(),
            self.ca.display()
        );
        s.write("markwatch.toml", &text).display().to_string()
    }

    /// Answer 503 to every request while `down`.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// A CA certificate this authority's tokens do not chain to.
    pub fn other_ca(&self) -> PathBuf {
        let d = self.dir.path();
        run(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "other.key",
                "-out",
                "other.pem",
                "-days",
                "30",
                "-subj",
                "/CN=another CA",
            ],
        );
        d.join("other.pem")
    }

    /// `openssl ts -verify` on a reply, as a third party would run it.
    pub fn openssl_verify(&self, reply: &Path, digest: &str, ca: &Path) -> (bool, String) {
        let out = Command::new("openssl")
            .args(["ts", "-verify", "-digest", digest, "-in"])
            .arg(reply)
            .arg("-CAfile")
            .arg(ca)
            .output()
            .expect("run openssl ts -verify");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (
            out.status.success() && text.contains("Verification: OK"),
            text,
        )
    }
}

fn answer(
    stream: TcpStream,
    dir: &Path,
    down: &AtomicBool,
    granted: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut query = vec![0; length];
    reader.read_exact(&mut query)?;
    let mut out = stream;
    if down.load(Ordering::SeqCst) {
        return out.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        );
    }
    std::fs::write(dir.join("query.tsq"), &query)?;
    let status = Command::new("openssl")
        .args([
            "ts",
            "-reply",
            "-config",
            "ts.cnf",
            "-queryfile",
            "query.tsq",
            "-out",
            "reply.tsr",
        ])
        .current_dir(dir)
        .output()?;
    if !status.status.success() {
        eprintln!(
            "test TSA: openssl ts -reply: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        return out.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        );
    }
    let reply = std::fs::read(dir.join("reply.tsr"))?;
    granted.fetch_add(1, Ordering::SeqCst);
    write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: application/timestamp-reply\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        reply.len()
    )?;
    out.write_all(&reply)
}
