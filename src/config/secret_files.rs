//! `*_FILE` settings: every secret can be given as the path of a file that holds it, as
//! Docker and Kubernetes mount secrets. The file's text is parsed as the setting itself would
//! be (one trailing newline dropped); an error names the file and the reason, never the
//! content.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A setting of type `T` read from a file.
#[derive(Clone)]
pub struct FromFile<T> {
    pub path: PathBuf,
    pub value: T,
}

impl<T> fmt::Debug for FromFile<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FromFile({})", self.path.display())
    }
}

impl<T: FromStr<Err = String>> FromStr for FromFile<T> {
    type Err = String;
    fn from_str(path: &str) -> Result<Self, Self::Err> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the file {path}: {}", e.kind()))?;
        let text = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(&text);
        let value = T::from_str(text).map_err(|e| format!("the file {path}: {e}"))?;
        Ok(Self {
            path: PathBuf::from(path),
            value,
        })
    }
}

/// A plain string setting (a database URL with its password) for [`FromFile`].
#[derive(Clone)]
pub struct Text(pub String);

impl FromStr for Text {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty".into());
        }
        Ok(Self(s.to_owned()))
    }
}

/// `file` in place of `value` when it was given (clap makes the two exclusive).
pub fn either<T>(value: &mut Option<T>, file: Option<FromFile<T>>) {
    if let Some(f) = file {
        *value = Some(f.value);
    }
}
