//! A forward HTTP proxy on loopback, as an account's proxy is: it relays each request to the
//! host its absolute URI names and remembers the URIs, so a test can tell what went through it.
//! With credentials it answers 407 to requests that lack them, as a paid proxy does.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone)]
pub struct Proxy {
    pub port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// Starts the proxy; `credentials` (user, password) makes it require them.
    pub async fn start(credentials: Option<(&str, &str)>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let want = credentials.map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        });
        let proxy = Proxy {
            port,
            seen: seen.clone(),
        };
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (seen, want) = (seen.clone(), want.clone());
                tokio::spawn(async move {
                    let _ = relay(conn, &seen, want.as_deref()).await;
                });
            }
        });
        proxy
    }

    /// The absolute URIs relayed so far.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// One request per connection: the proxy closes it after the reply, and the client opens another.
async fn relay(
    conn: TcpStream,
    seen: &Mutex<Vec<String>>,
    want: Option<&str>,
) -> std::io::Result<()> {
    let mut client = BufReader::new(conn);
    let mut line = String::new();
    client.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let (method, uri) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut headers = Vec::new();
    let (mut length, mut authorized) = (0usize, want.is_none());
    loop {
        let mut h = String::new();
        if client.read_line(&mut h).await? == 0 || h == "\r\n" {
            break;
        }
        let (name, value) = h.split_once(':').unwrap_or((h.as_str(), ""));
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
        match name.as_str() {
            "proxy-authorization" => authorized |= Some(value.as_str()) == want,
            "proxy-connection" | "connection" | "keep-alive" => {}
            _ => {
                if name == "content-length" {
                    length = value.parse().unwrap_or(0);
                }
                headers.push(format!("{name}: {value}\r\n"));
            }
        }
    }
    let mut body = vec![0; length];
    client.read_exact(&mut body).await?;
    if !authorized {
        client
            .get_mut()
            .write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                  Proxy-Authenticate: Basic realm=\"account proxy\"\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
        return Ok(());
    }
    let Some(rest) = uri.strip_prefix("http://") else {
        client
            .get_mut()
            .write_all(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    seen.lock().unwrap().push(uri.to_string());
    let mut upstream = TcpStream::connect(host).await?;
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for h in &headers {
        head.push_str(h);
    }
    head.push_str("connection: close\r\n\r\n");
    upstream.write_all(head.as_bytes()).await?;
    upstream.write_all(&body).await?;
    let mut reply = Vec::new();
    upstream.read_to_end(&mut reply).await?;
    client.get_mut().write_all(&reply).await?;
    client.get_mut().shutdown().await
}
