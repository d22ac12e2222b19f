//! The mail transport from configuration: SMTP (STARTTLS, implicit TLS or plain, with optional
//! auth) or lettre's file transport writing `.eml` files.
//!
//! The SMTP password comes from `email.smtp.password` (best set through the environment,
//! `MARKWATCH_EMAIL__SMTP__PASSWORD`) or `email.smtp.password_file`; it is held only inside
//! lettre's credentials and never logged or described.

use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::AlertError;
use crate::config::{EmailConfig, EmailTransport, SmtpTls};

/// Where alert emails go.
#[derive(Clone)]
pub enum Transport {
    Smtp {
        mailer: AsyncSmtpTransport<Tokio1Executor>,
        /// `smtp://host:port (starttls)`, no credentials.
        description: String,
    },
    File {
        mailer: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A delivery attempt that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// The server refused for good (5xx): retrying will not help.
    pub permanent: bool,
    /// No SMTP reply at all (connection, TLS, timeout): the next message would fail the same
    /// way. A server that answered 4xx may still take other messages.
    pub unreachable: bool,
    pub message: String,
}

impl Transport {
    /// Builds the configured transport. Reads the password file now, so a missing file is a
    /// startup error rather than a failed alert.
    pub fn from_config(config: &EmailConfig) -> Result<Transport, AlertError> {
        match config.transport {
            EmailTransport::File => Ok(Transport::file(config.dir.clone())),
            EmailTransport::Smtp => Self::smtp(config),
        }
    }

    /// Writes each message as `<dir>/<uuid>.eml`.
    pub fn file(dir: PathBuf) -> Transport {
        Transport::File {
            mailer: AsyncFileTransport::<Tokio1Executor>::new(&dir),
            dir,
        }
    }

    fn smtp(config: &EmailConfig) -> Result<Transport, AlertError> {
        let smtp = &config.smtp;
        let bad = |message: String| AlertError::Smtp { message };
        let tls = match smtp.tls {
            SmtpTls::None => Tls::None,
            mode => {
                let params = TlsParameters::new(smtp.host.clone())
                    .map_err(|e| bad(format!("email.smtp.host `{}`: {e}", smtp.host)))?;
                if mode == SmtpTls::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .port(smtp.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(config.timeout_secs)));
        let password = match (&smtp.password, &smtp.password_file) {
            (Some(p), _) => Some(p.expose().to_owned()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    bad(format!(
                        "email.smtp.password_file {}: cannot read: {e}",
                        path.display()
                    ))
                })?;
                Some(text.trim_end_matches(['\r', '\n']).to_owned())
            }
            (None, None) => None,
        };
        match (&smtp.username, password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password));
            }
            (Some(_), None) => {
                return Err(bad(
                    "email.smtp.username is set but no password: set email.smtp.password_file or MARKWATCH_EMAIL__SMTP__PASSWORD".to_owned(),
                ));
            }
            (None, Some(_)) => {
                return Err(bad(
                    "a password is set but email.smtp.username is not".to_owned()
                ));
            }
            (None, None) => {}
        }
        let tls_name = match smtp.tls {
            SmtpTls::Starttls => "starttls",
            SmtpTls::Tls => "tls",
            SmtpTls::None => "plain",
        };
        let auth = match &smtp.username {
            Some(user) => format!(", user {user}"),
            None => String::new(),
        };
        Ok(Transport::Smtp {
            mailer: builder.build(),
            description: format!("smtp://{}:{} ({tls_name}{auth})", smtp.host, smtp.port),
        })
    }

    /// What the transport is, for logs and `alerts test`: never includes the password.
    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp { description, .. } => description.clone(),
            Transport::File { dir, .. } => format!("file transport into {}", dir.display()),
        }
    }

    /// Hands one message over. Returns the server's response (or the file written).
    pub async fn send(&self, message: Message) -> Result<String, SendError> {
        match self {
            Transport::Smtp { mailer, .. } => match mailer.send(message).await {
                Ok(response) => {
                    let text: Vec<&str> = response.message().collect();
                    Ok(format!("{} {}", response.code(), text.join(" ")))
                }
                Err(e) => Err(SendError {
                    permanent: e.is_permanent(),
                    unreachable: e.status().is_none() && !e.is_response(),
                    message: smtp_error_text(&e),
                }),
            },
            Transport::File { mailer, dir } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| SendError {
                        permanent: false,
                        unreachable: true,
                        message: format!("cannot create {}: {e}", dir.display()),
                    })?;
                match mailer.send(message).await {
                    Ok(id) => Ok(format!(
                        "written {}",
                        dir.join(format!("{id}.eml")).display()
                    )),
                    Err(e) => Err(SendError {
                        permanent: false,
                        unreachable: true,
                        message: format!("cannot write into {}: {e}", dir.display()),
                    }),
                }
            }
        }
    }
}

/// lettre's error with its causes, on one line.
fn smtp_error_text(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    super::message::one_line(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, SmtpConfig};

    fn smtp(tls: SmtpTls, port: u16) -> EmailConfig {
        EmailConfig {
            transport: EmailTransport::Smtp,
            smtp: SmtpConfig {
                host: "mail.example".to_owned(),
                port,
                tls,
                username: Some("mw".to_owned()),
                password: Some(Secret::new("hunter2")),
                password_file: None,
            },
            ..EmailConfig::default()
        }
    }

    #[test]
    fn every_tls_mode_builds_and_no_description_shows_the_password() {
        for (tls, port, name) in [
            (SmtpTls::Starttls, 587, "starttls"),
            (SmtpTls::Tls, 465, "tls"),
            (SmtpTls::None, 25, "plain"),
        ] {
            let t = Transport::from_config(&smtp(tls, port)).unwrap();
            let shown = format!("{} {t:?}", t.describe());
            assert!(
                shown.contains(&format!("smtp://mail.example:{port} ({name}, user mw)")),
                "{shown}"
            );
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        let file = Transport::from_config(&EmailConfig::default()).unwrap();
        assert_eq!(file.describe(), "file transport into outbox");
    }

    #[test]
    fn half_configured_auth_is_refused_at_startup() {
        let mut c = smtp(SmtpTls::Starttls, 587);
        c.smtp.password = None;
        let err = Transport::from_config(&c).unwrap_err().to_string();
        assert!(err.contains("no password"), "{err}");
        c.smtp.password_file = Some("/nonexistent/pw".into());
        let err = Transport::from_config(&c).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/pw"), "{err}");
    }
}
