//! Writes settings into the `.env` file that `main` reads at start-up.
//!
//! The setup page and `greenlight setup gitlab` store the secrets they obtain here, so the
//! next start finds them with nothing else to configure (on Fly.io the working directory is
//! the volume). The file is written whole to a temporary file beside it with mode 0600 (only
//! the service's user may read a private key) and renamed over the old one, so a crash leaves
//! either the old file or the new one, never half of each. Lines of other settings are kept;
//! a line setting one of the written keys is replaced.

use std::io::Write as _;
use std::path::Path;

/// A setting to write: its variable and its value (a secret, never logged).
pub struct Entry<'a> {
    pub key: &'a str,
    pub value: &'a str,
}

/// Why a file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    /// A value that single quotes cannot hold (the message names the key, not the value).
    #[error("the value of {0} holds a single quote")]
    Unquotable(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Sets `entries` in the file at `path` (created if missing), keeping its other lines.
/// Newlines in a value (a PEM key) are written as literal `\n`, which the settings that take
/// PEM text accept.
pub fn write(path: &Path, entries: &[Entry<'_>]) -> Result<(), EnvFileError> {
    let io = |source| EnvFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let old = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(e)),
    };
    let text = merged(&old, entries)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| ".env".to_owned(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.greenlight-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut file = options.open(&tmp)?;
        // The mode given at creation is masked by the umask, and a leftover file keeps its own.
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the directory is.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// `old` with every line setting one of `entries` removed and `entries` appended.
fn merged(old: &str, entries: &[Entry<'_>]) -> Result<String, EnvFileError> {
    let mut out = String::new();
    for line in old.lines() {
        let key = line
            .trim_start()
            .trim_start_matches("export ")
            .split('=')
            .next()
            .unwrap_or("")
            .trim();
        if !entries.iter().any(|e| e.key == key) {
            out.push_str(line);
            out.push('\n');
        }
    }
    for e in entries {
        if e.value.contains('\'') {
            return Err(EnvFileError::Unquotable(e.key.to_owned()));
        }
        let value = e
            .value
            .trim_end()
            .replace("\r\n", "\n")
            .replace('\n', "\\n");
        out.push_str(&format!("{}='{value}'\n", e.key));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_lines_are_kept_and_keys_replaced() {
        let old = "DATABASE_URL=sqlite://x.db\nexport GITHUB_APP_ID=1\n# note\n";
        let text = merged(
            old,
            &[
                Entry {
                    key: "GITHUB_APP_ID",
                    value: "2",
                },
                Entry {
                    key: "GITHUB_PRIVATE_KEY",
                    value: "-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
                },
            ],
        )
        .expect("merged");
        assert_eq!(
            text,
            "DATABASE_URL=sqlite://x.db\n# note\nGITHUB_APP_ID='2'\n\
             GITHUB_PRIVATE_KEY='-----BEGIN KEY-----\\nabc\\n-----END KEY-----'\n"
        );
    }

    #[test]
    fn a_quote_is_refused_without_the_value() {
        let err = merged(
            "",
            &[Entry {
                key: "K",
                value: "se'cret",
            }],
        )
        .expect_err("refused");
        assert!(!err.to_string().contains("se'cret"));
    }

    #[cfg(unix)]
    #[test]
    fn written_with_mode_0600_and_read_back_by_dotenvy() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(".env");
        std::fs::write(&path, "KEEP=1\n").expect("seed");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write(
            &path,
            &[Entry {
                key: "GREENLIGHT_TEST_PEM",
                value: "-----BEGIN X-----\nline\n-----END X-----",
            }],
        )
        .expect("written");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let read: Vec<(String, String)> = dotenvy::from_path_iter(&path)
            .expect("parse")
            .map(|r| r.expect("entry"))
            .collect();
        assert_eq!(read[0], ("KEEP".into(), "1".into()));
        assert_eq!(
            read[1].1, "-----BEGIN X-----\\nline\\n-----END X-----",
            "literal \\n, as GITHUB_PRIVATE_KEY accepts"
        );
    }
}
