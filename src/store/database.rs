//! Where the data lives: an SQLite file (the embedded default) or a PostgreSQL server shared by
//! several machines.

use std::fmt;
use std::path::{Path, PathBuf};

use super::sql::Backend;

/// The `database` setting: a file path, or a `postgres://` URL.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    /// The URL as given: it may carry a password, so it is never displayed whole.
    Postgres(String),
}

impl Database {
    /// Reads the setting: `postgres://…` or `postgresql://…` is a server, anything else a file
    /// (an `sqlite:` prefix is allowed).
    pub fn parse(text: &str) -> Result<Database, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("must name a file or a postgres:// URL".to_owned());
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            let url = url::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
            if url.host_str().is_none_or(str::is_empty) && !text.contains("host=") {
                return Err("a postgres:// URL needs a host".to_owned());
            }
            return Ok(Database::Postgres(text.to_owned()));
        }
        let path = text
            .strip_prefix("sqlite://")
            .or(text.strip_prefix("sqlite:"));
        Ok(Database::Sqlite(PathBuf::from(path.unwrap_or(text))))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Database::Sqlite(_) => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite file, if that is what this is.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Database::Sqlite(path) => Some(path),
            Database::Postgres(_) => None,
        }
    }

    /// A local file that belongs with this database (its key file, the daemon's lock and
    /// control token): beside an SQLite file, or `markwatch<suffix>` in the working directory
    /// for a server, where each machine keeps its own.
    pub fn companion(&self, suffix: &str) -> PathBuf {
        match self {
            Database::Sqlite(path) => {
                let mut name = path.as_os_str().to_owned();
                name.push(suffix);
                PathBuf::from(name)
            }
            Database::Postgres(_) => PathBuf::from(format!("markwatch{suffix}")),
        }
    }
}

impl From<PathBuf> for Database {
    fn from(path: PathBuf) -> Database {
        Database::Sqlite(path)
    }
}

impl From<&Database> for Database {
    fn from(database: &Database) -> Database {
        database.clone()
    }
}

impl From<&PathBuf> for Database {
    fn from(path: &PathBuf) -> Database {
        Database::Sqlite(path.clone())
    }
}

impl From<&Path> for Database {
    fn from(path: &Path) -> Database {
        Database::Sqlite(path.to_owned())
    }
}

/// The path, or the URL without its password or query (where options such as a password may
/// also be given).
impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(text) => match url::Url::parse(text) {
                Ok(mut url) => {
                    if url.password().is_some() {
                        let _ = url.set_password(Some("***"));
                    }
                    url.set_query(None);
                    write!(f, "{url}")
                }
                Err(_) => f.write_str("postgres://(unreadable URL)"),
            },
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Database({self})")
    }
}

/// As displayed: a URL's password never leaves in a printed configuration.
impl serde::Serialize for Database {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Database::Sqlite(path) => path.serialize(s),
            Database::Postgres(_) => s.collect_str(self),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Database {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Database::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_files_and_urls_and_hides_passwords() {
        assert_eq!(
            Database::parse("data/mw.db").unwrap(),
            Database::Sqlite("data/mw.db".into())
        );
        assert_eq!(
            Database::parse("sqlite:mw.db").unwrap(),
            Database::Sqlite("mw.db".into())
        );
        let pg =
            Database::parse("postgres://mw:s3cret@db.internal:5432/mw?sslmode=require").unwrap();
        assert_eq!(pg.backend(), Backend::Postgres);
        let shown = format!("{pg} {pg:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.internal:5432/mw"), "{shown}");
        assert_eq!(pg.companion(".key"), PathBuf::from("markwatch.key"));
        assert_eq!(
            Database::parse("mw.db").unwrap().companion(".key"),
            PathBuf::from("mw.db.key")
        );
        assert!(Database::parse("  ").is_err());
        assert!(Database::parse("postgres://").is_err());
    }
}
