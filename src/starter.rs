//! `greenlight init`: the starter files a repository needs, written into its checkout — the
//! policy, and the pipeline and deploy workflows (GitHub) or the CI configuration (GitLab),
//! with the least-privilege settings the README's security model asks for. The files are the
//! README's samples (a test keeps the two equal), compiled into the binary.

use std::path::{Path, PathBuf};

use crate::config::policy::{GITHUB_PATH, GITLAB_PATH};
use crate::release::Forge;

/// One file `init` writes: where in the checkout, and what.
#[derive(Debug, Clone, Copy)]
pub struct StarterFile {
    pub path: &'static str,
    pub text: &'static str,
}

const GITHUB: &[StarterFile] = &[
    StarterFile {
        path: GITHUB_PATH,
        text: include_str!("../templates/starter/github/greenlight.toml"),
    },
    StarterFile {
        path: ".github/workflows/ci.yml",
        text: include_str!("../templates/starter/github/ci.yml"),
    },
    StarterFile {
        path: ".github/workflows/deploy.yml",
        text: include_str!("../templates/starter/github/deploy.yml"),
    },
];

const GITLAB: &[StarterFile] = &[
    StarterFile {
        path: GITLAB_PATH,
        text: include_str!("../templates/starter/gitlab/greenlight.toml"),
    },
    StarterFile {
        path: ".gitlab-ci.yml",
        text: include_str!("../templates/starter/gitlab/gitlab-ci.yml"),
    },
];

/// The starter files for `forge`.
pub fn files(forge: Forge) -> &'static [StarterFile] {
    match forge {
        Forge::GitHub => GITHUB,
        Forge::GitLab => GITLAB,
    }
}

/// What `init` did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wrote {
    Created(PathBuf),
    /// It existed and `--force` was given.
    Replaced(PathBuf),
    /// It existed with exactly this text already.
    Unchanged(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    #[error(
        "{} already exist{} and would be overwritten; nothing was written (--force overwrites)",
        list(.0),
        if .0.len() == 1 { "s" } else { "" }
    )]
    WouldOverwrite(Vec<PathBuf>),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes `forge`'s starter files under `dir`. Without `force`, a file that exists with other
/// text stops the whole run before anything is written: all or nothing.
pub fn write(dir: &Path, forge: Forge, force: bool) -> Result<Vec<Wrote>, InitError> {
    if !dir.is_dir() {
        return Err(InitError::NotADirectory(dir.to_owned()));
    }
    let plan: Vec<(PathBuf, &StarterFile, Option<String>)> = files(forge)
        .iter()
        .map(|f| {
            let path = dir.join(f.path);
            let existing = std::fs::read_to_string(&path).ok();
            (path, f, existing)
        })
        .collect();
    let clashes: Vec<PathBuf> = plan
        .iter()
        .filter(|(path, f, existing)| {
            existing.as_deref().is_some_and(|t| t != f.text)
                || (existing.is_none() && path.exists())
        })
        .map(|(path, _, _)| path.clone())
        .collect();
    if !clashes.is_empty() && !force {
        return Err(InitError::WouldOverwrite(clashes));
    }
    let mut done = Vec::new();
    for (path, f, existing) in plan {
        let io = |source| InitError::Io {
            path: path.clone(),
            source,
        };
        match existing {
            Some(t) if t == f.text => {
                done.push(Wrote::Unchanged(path));
                continue;
            }
            _ => {}
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let existed = path.exists();
        std::fs::write(&path, f.text).map_err(io)?;
        done.push(if existed {
            Wrote::Replaced(path)
        } else {
            Wrote::Created(path)
        });
    }
    Ok(done)
}

/// What a person does next, after the files are written.
pub fn next_steps(forge: Forge) -> &'static str {
    match forge {
        Forge::GitHub => {
            "Next: edit `make test` and `./deploy.sh` to your commands, commit the files to the default branch, \
             and make Greenlight the `production` environment's deployment protection rule (README, step 4). \
             Check the policy with: greenlight check-config .github/greenlight.toml"
        }
        Forge::GitLab => {
            "Next: edit `make test` and `./deploy.sh` to your commands (merge the jobs into your own .gitlab-ci.yml \
             if you had one), commit the files to the default branch, and protect the `production` environment \
             (README, \"Keeping a hand-made pipeline from deploying\"). \
             Check the policy with: greenlight check-config --forge gitlab .gitlab/greenlight.toml"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::policy;

    #[test]
    fn every_starter_policy_is_valid_for_its_forge() {
        for forge in [Forge::GitHub, Forge::GitLab] {
            let file = files(forge)[0];
            policy::parse_for(file.text, forge)
                .unwrap_or_else(|e| panic!("{}:{}:{}: {}", file.path, e.line, e.column, e.message));
        }
    }

    #[test]
    fn an_existing_file_stops_everything_without_force() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir_all(dir.path().join(".github/workflows")).expect("mkdir");
        std::fs::write(dir.path().join(".github/workflows/ci.yml"), "mine").expect("write");
        let err = write(dir.path(), Forge::GitHub, false).expect_err("clash");
        assert!(
            matches!(err, InitError::WouldOverwrite(ref p) if p.len() == 1),
            "{err}"
        );
        assert!(!dir.path().join(GITHUB_PATH).exists(), "nothing written");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".github/workflows/ci.yml")).expect("read"),
            "mine"
        );
        let done = write(dir.path(), Forge::GitHub, true).expect("forced");
        assert_eq!(
            done.iter()
                .filter(|w| matches!(w, Wrote::Replaced(_)))
                .count(),
            1
        );
        // A second run finds everything as it would write it.
        let again = write(dir.path(), Forge::GitHub, false).expect("again");
        assert!(again.iter().all(|w| matches!(w, Wrote::Unchanged(_))));
    }
}
