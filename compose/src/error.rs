//! Errors of loading a compose project: each names the file, line and column it is about and
//! quotes the line, so a user can act on it without hunting.

use std::fmt;
use std::path::PathBuf;

use crate::yaml::Loc;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Something wrong at a place in a compose file.
    #[error("{}", Located(.loc, .message))]
    At { loc: Loc, message: String },
    /// A file that cannot be read.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A problem that belongs to no single place (no compose file found, a bad project name).
    #[error("{0}")]
    Plain(String),
}

impl LoadError {
    pub fn at(loc: &Loc, message: impl Into<String>) -> Self {
        LoadError::At {
            loc: loc.clone(),
            message: message.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LoadError::Io {
            path: path.into(),
            source,
        }
    }

    /// The location the error is about, if it has one.
    pub fn loc(&self) -> Option<&Loc> {
        match self {
            LoadError::At { loc, .. } => Some(loc),
            _ => None,
        }
    }
}

struct Located<'a>(&'a Loc, &'a String);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (loc, message) = (self.0, self.1);
        if !loc.has_source() {
            return write!(f, "{message}");
        }
        write!(f, "{loc}: {message}")?;
        if let Some(snippet) = loc.snippet() {
            write!(f, "\n{snippet}")?;
        }
        Ok(())
    }
}

impl From<crate::yaml::YamlError> for LoadError {
    fn from(e: crate::yaml::YamlError) -> Self {
        LoadError::At {
            message: format!("invalid YAML: {}", e.message),
            loc: e.loc,
        }
    }
}

impl From<crate::schema::SchemaError> for LoadError {
    fn from(e: crate::schema::SchemaError) -> Self {
        LoadError::At {
            message: format!("{}: {}", e.path, e.message),
            loc: e.loc,
        }
    }
}
