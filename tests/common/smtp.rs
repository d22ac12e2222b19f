//! A small SMTP server for tests: speaks real (E)SMTP on 127.0.0.1, one thread per connection,
//! and keeps every message it accepted. It can delay or hold its answer to DATA (to kill a client
//! mid-conversation), refuse recipients for good (550), or answer 451 for a while. It also keeps
//! every message handed to it, answered or not (`tried`).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One message the server accepted (it answered 250 to the end of DATA).
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as sent, dot-stuffing removed, CRLF line ends.
    pub data: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Behaviour {
    /// Wait this long before answering the end of DATA.
    pub accept_delay: Duration,
    /// Refuse recipients with this domain for good (550).
    pub reject_domain: Mutex<Option<String>>,
    /// Refuse for good (550) every recipient not at this domain.
    pub reject_except: Mutex<Option<String>>,
    /// Hold the answer to a message for a recipient at this domain until the client is gone
    /// (killed) or this changes.
    pub stall_domain: Mutex<Option<String>>,
    /// Answer `451` to this many DATA ends before accepting again.
    pub transient_failures: AtomicUsize,
    /// Offer AUTH PLAIN and accept only this base64 initial response.
    pub auth_plain: Option<String>,
    /// Every AUTH command received, as sent.
    pub auth_seen: Mutex<Vec<String>>,
}

pub struct SmtpSink {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// Every message whose DATA arrived in full, whatever the answer (or none): real attempts.
    pub tried: Arc<Mutex<Vec<Received>>>,
    pub behaviour: Arc<Behaviour>,
    stop: Arc<AtomicBool>,
}

impl SmtpSink {
    pub fn start(behaviour: Behaviour) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind smtp sink");
        Self::serve(listener, behaviour)
    }

    /// Listens on a port reserved earlier with [`reserve_port`] (the "server comes back up").
    pub fn start_on(port: u16, behaviour: Behaviour) -> SmtpSink {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("rebind smtp port");
        Self::serve(listener, behaviour)
    }

    fn serve(listener: TcpListener, behaviour: Behaviour) -> SmtpSink {
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let tried = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(behaviour);
        let stop = Arc::new(AtomicBool::new(false));
        listener.set_nonblocking(true).unwrap();
        {
            let (received, tried, behaviour, stop) = (
                received.clone(),
                tried.clone(),
                behaviour.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (received, tried, behaviour) =
                                (received.clone(), tried.clone(), behaviour.clone());
                            std::thread::spawn(move || {
                                let _ = session(stream, &received, &tried, &behaviour);
                            });
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(10))
                        }
                        Err(_) => break,
                    }
                }
            });
        }
        SmtpSink {
            addr,
            received,
            tried,
            behaviour,
            stop,
        }
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// How many messages arrived in full, answered or not.
    pub fn tried_count(&self) -> usize {
        self.tried.lock().unwrap().len()
    }

    /// Waits until at least `n` messages arrived in full, or panics after `timeout`.
    pub fn wait_for_tried(&self, n: usize, timeout: Duration) {
        let start = Instant::now();
        while self.tried_count() < n {
            assert!(
                start.elapsed() < timeout,
                "smtp sink: {} of {n} messages tried after {timeout:?}",
                self.tried_count()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until at least `n` messages were accepted, or panics after `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) {
        let start = Instant::now();
        while self.count() < n {
            assert!(
                start.elapsed() < timeout,
                "smtp sink: {} of {n} messages after {timeout:?}",
                self.count()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A free loopback port with nothing listening on it (SMTP "down").
pub fn reserve_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn session(
    stream: TcpStream,
    received: &Mutex<Vec<Received>>,
    tried: &Mutex<Vec<Received>>,
    behaviour: &Behaviour,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    out.write_all(b"220 sink.test ESMTP ready\r\n")?;
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    let mut authenticated = false;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            if behaviour.auth_plain.is_some() {
                out.write_all(b"250-sink.test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n")?;
            } else {
                out.write_all(
                    b"250-sink.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n",
                )?;
            }
        } else if upper.starts_with("AUTH ") {
            behaviour.auth_seen.lock().unwrap().push(cmd.clone());
            let given = cmd.split_whitespace().nth(2).unwrap_or("");
            if behaviour.auth_plain.as_deref() == Some(given) {
                authenticated = true;
                out.write_all(b"235 2.7.0 Authentication successful\r\n")?;
            } else {
                out.write_all(b"535 5.7.8 Authentication credentials invalid\r\n")?;
            }
        } else if upper.starts_with("HELO") {
            out.write_all(b"250 sink.test\r\n")?;
        } else if upper.starts_with("MAIL FROM:") {
            if behaviour.auth_plain.is_some() && !authenticated {
                out.write_all(b"530 5.7.0 Authentication required\r\n")?;
                continue;
            }
            mail_from = address(&cmd[10..]);
            rcpt_to.clear();
            out.write_all(b"250 2.1.0 Ok\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            let to = address(&cmd[8..]);
            let at = |d: &String| to.ends_with(&format!("@{d}"));
            let rejected = behaviour
                .reject_domain
                .lock()
                .unwrap()
                .as_ref()
                .is_some_and(at)
                || behaviour
                    .reject_except
                    .lock()
                    .unwrap()
                    .as_ref()
                    .is_some_and(|d| !at(d));
            if rejected {
                out.write_all(b"550 5.1.1 No such user here\r\n")?;
            } else {
                rcpt_to.push(to);
                out.write_all(b"250 2.1.5 Ok\r\n")?;
            }
        } else if upper == "DATA" {
            if rcpt_to.is_empty() {
                out.write_all(b"554 5.5.1 No valid recipients\r\n")?;
                continue;
            }
            out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
            let mut data = Vec::new();
            loop {
                let mut raw = Vec::new();
                if reader.read_until(b'\n', &mut raw)? == 0 {
                    return Ok(()); // client vanished mid-message: nothing accepted
                }
                if raw == b".\r\n" || raw == b".\n" {
                    break;
                }
                let body = if raw.starts_with(b"..") {
                    &raw[1..]
                } else {
                    &raw[..]
                };
                data.extend_from_slice(body);
            }
            tried.lock().unwrap().push(Received {
                mail_from: mail_from.clone(),
                rcpt_to: rcpt_to.clone(),
                data: data.clone(),
            });
            let stalled = || {
                let domain = behaviour.stall_domain.lock().unwrap().clone();
                domain.is_some_and(|d| rcpt_to.iter().any(|r| r.ends_with(&format!("@{d}"))))
            };
            while stalled() && !peer_gone(&out) {
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(behaviour.accept_delay);
            if peer_gone(&out) {
                return Ok(()); // killed while we waited: it never saw an answer
            }
            let transient = behaviour
                .transient_failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if transient {
                out.write_all(b"451 4.3.0 Try again later\r\n")?;
                continue;
            }
            let n = {
                let mut r = received.lock().unwrap();
                r.push(Received {
                    mail_from: mail_from.clone(),
                    rcpt_to: rcpt_to.clone(),
                    data,
                });
                r.len()
            };
            out.write_all(format!("250 2.0.0 Ok: queued as SINK{n}\r\n").as_bytes())?;
        } else if upper == "RSET" {
            mail_from.clear();
            rcpt_to.clear();
            out.write_all(b"250 2.0.0 Ok\r\n")?;
        } else if upper == "NOOP" {
            out.write_all(b"250 2.0.0 Ok\r\n")?;
        } else if upper == "QUIT" {
            out.write_all(b"221 2.0.0 Bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"502 5.5.2 Command not recognized\r\n")?;
        }
    }
}

fn address(arg: &str) -> String {
    let arg = arg.trim();
    let inner = arg
        .strip_prefix('<')
        .and_then(|a| a.split_once('>'))
        .map_or(arg, |(a, _)| a);
    inner.to_owned()
}

/// Whether the client closed its side (a killed process's socket reads EOF).
fn peer_gone(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).ok();
    let mut buf = [0u8; 1];
    let gone = match stream.peek(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).ok();
    gone
}
