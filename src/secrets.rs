//! Secrets at rest: account cookies and proxy credentials are sealed with XChaCha20-Poly1305
//! under one key kept outside the database (`MARKWATCH_SECRET_KEY`, or a 0600 key file beside
//! it). A copy of the database alone reveals no secret.

use std::fmt;
use std::path::{Path, PathBuf};

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead as _, Generate as _, KeyInit as _, Payload};

/// The environment variable that holds the key (64 hex digits) instead of a key file.
pub const SECRET_KEY_ENV: &str = "MARKWATCH_SECRET_KEY";

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// First byte of every sealed value, so a later format can be told apart.
const VERSION: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{SECRET_KEY_ENV} must be 64 hex digits (32 bytes), e.g. from `openssl rand -hex 32`")]
    BadEnvKey,
    #[error("key file {}: must hold 64 hex digits (32 bytes)", .0.display())]
    BadKeyFile(PathBuf),
    #[error(
        "key file {} is readable by other users (mode {mode:o}); run `chmod 600` on it",
        path.display()
    )]
    KeyFileOpen { path: PathBuf, mode: u32 },
    #[error("key file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The value was sealed under another key, for another owner, or was altered.
    #[error("cannot decrypt {what}: wrong secret key ({source_of_key}), or the value was altered")]
    WrongKey { what: String, source_of_key: String },
}

/// The key that seals secrets. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey {
    key: [u8; KEY_LEN],
    /// Where it came from, for error messages: the env variable or the file's path.
    origin: String,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("key", &"<redacted>")
            .field("origin", &self.origin)
            .finish()
    }
}

impl SecretKey {
    /// The key from `env_value` (the content of [`SECRET_KEY_ENV`]) when set, otherwise from
    /// `file`, which is created 0600 with a fresh random key at first use.
    pub fn load(env_value: Option<&str>, file: &Path) -> Result<SecretKey, SecretError> {
        if let Some(value) = env_value {
            let key = parse_hex_key(value).ok_or(SecretError::BadEnvKey)?;
            return Ok(SecretKey {
                key,
                origin: SECRET_KEY_ENV.to_owned(),
            });
        }
        let io = |source| SecretError::Io {
            path: file.to_owned(),
            source,
        };
        let origin = format!("key file {}", file.display());
        match create_key_file(file) {
            Ok(key) => return Ok(SecretKey { key, origin }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(file).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError::KeyFileOpen {
                path: file.to_owned(),
                mode,
            });
        }
        let text = std::fs::read_to_string(file).map_err(io)?;
        let key = parse_hex_key(&text).ok_or_else(|| SecretError::BadKeyFile(file.to_owned()))?;
        Ok(SecretKey { key, origin })
    }

    /// A fresh random key, for tests.
    #[cfg(test)]
    pub(crate) fn random() -> SecretKey {
        SecretKey {
            key: random_key(),
            origin: "test".to_owned(),
        }
    }

    /// Where the key came from, e.g. `key file /var/lib/markwatch/markwatch.db.key`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// `plaintext` sealed with a random nonce; `context` (e.g. the owner's platform and name)
    /// is authenticated, so a sealed value copied to another row does not open there.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new(&self.key.into());
        let nonce = chacha20poly1305::XNonce::generate();
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`SecretKey::seal`] sealed with the same `context`; `what` names the value
    /// in the error.
    pub fn open(&self, context: &str, sealed: &[u8], what: &str) -> Result<Vec<u8>, SecretError> {
        let wrong = || SecretError::WrongKey {
            what: what.to_owned(),
            source_of_key: self.origin.clone(),
        };
        let [VERSION, rest @ ..] = sealed else {
            return Err(wrong());
        };
        if rest.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = chacha20poly1305::XNonce::try_from(nonce).map_err(|_| wrong())?;
        XChaCha20Poly1305::new(&self.key.into())
            .decrypt(
                &nonce,
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| wrong())
    }
}

/// The default key file: beside the database, named after it (`markwatch.db.key`).
pub fn default_key_file(database: impl Into<crate::store::Database>) -> PathBuf {
    database.into().companion(".key")
}

fn parse_hex_key(text: &str) -> Option<[u8; KEY_LEN]> {
    let bytes = hex::decode(text.trim()).ok()?;
    bytes.try_into().ok()
}

fn random_key() -> [u8; KEY_LEN] {
    use rand::RngCore as _;
    let mut key = [0u8; KEY_LEN];
    rand::rng().fill_bytes(&mut key);
    key
}

/// Creates `path` 0600 holding a new random key; fails with `AlreadyExists` if it exists.
/// The key is written under a temporary name and linked into place, so a process starting at
/// the same moment never reads a half-written key file.
fn create_key_file(path: &Path) -> std::io::Result<[u8; KEY_LEN]> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    if path.exists() {
        return Err(std::io::ErrorKind::AlreadyExists.into());
    }
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp-{}", hex::encode(&random_key()[..8])));
    let tmp = path.with_file_name(tmp_name);
    let key = random_key();
    let created = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // The umask can only take bits away; set exactly 0600 all the same.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        writeln!(file, "{}", hex::encode(key))?;
        file.sync_all()?;
        // Fails with AlreadyExists if another process linked its key first: that one wins.
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    created.map(|()| key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let key = SecretKey::random();
        let sealed = key.seal("taobao\0alice", b"secret cookie");
        assert_eq!(
            key.open("taobao\0alice", &sealed, "x").unwrap(),
            b"secret cookie"
        );
        assert!(key.open("taobao\0bob", &sealed, "x").is_err());
        assert!(
            SecretKey::random()
                .open("taobao\0alice", &sealed, "x")
                .is_err()
        );
        // Two seals of one value differ (random nonce).
        assert_ne!(sealed, key.seal("taobao\0alice", b"secret cookie"));
        assert!(!format!("{key:?}").contains(&hex::encode(key.key)));
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let a = SecretKey::load(None, &path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = SecretKey::load(None, &path).unwrap();
        assert_eq!(a.key, b.key);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            SecretKey::load(None, &path),
            Err(SecretError::KeyFileOpen { .. })
        ));
        assert!(matches!(
            SecretKey::load(Some("abc"), &path),
            Err(SecretError::BadEnvKey)
        ));
    }

    #[test]
    fn first_uses_at_the_same_moment_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let keys: Vec<[u8; KEY_LEN]> = std::thread::scope(|s| {
            let loads: Vec<_> = (0..16)
                .map(|_| s.spawn(|| SecretKey::load(None, &path).unwrap().key))
                .collect();
            loads.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| *k == keys[0]));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "only the key file remains");
    }
}
