//! Our own vocabulary for the things a release is about. Forge payloads are converted into
//! these at the edge; nothing past the forge modules sees an octocrab or GitLab struct.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which forge a delivery or repository belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Forge {
    GitHub,
    GitLab,
}

impl Forge {
    /// The name stored with deliveries and used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GitHub => "github",
            Self::GitLab => "gitlab",
        }
    }

    /// What the forge calls the thing a release comes from, for text people read.
    pub fn pull_request_noun(self) -> &'static str {
        match self {
            Self::GitHub => "pull request",
            Self::GitLab => "merge request",
        }
    }
}

/// A full 40-hex-digit commit id, lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommitSha(String);

impl CommitSha {
    /// Accepts 40 hex digits (any case); stores them lower-case.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first seven digits, as people write them.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }

    /// True when `prefix` (case-insensitive, at least 7 hex digits) starts this commit id.
    pub fn matches_prefix(&self, prefix: &str) -> bool {
        prefix.len() >= 7 && prefix.len() <= 40 && self.0.starts_with(&prefix.to_ascii_lowercase())
    }
}

impl TryFrom<String> for CommitSha {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or_else(|| format!("not a commit id: {s:?}"))
    }
}

impl From<CommitSha> for String {
    fn from(c: CommitSha) -> Self {
        c.0
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pull request (GitHub) or merge request (GitLab `iid`) number within its repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PrNumber(pub u64);

impl fmt::Display for PrNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A user's login (GitHub) or username (GitLab).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Login(pub String);

impl Login {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Logins compare case-insensitively on both forges.
    pub fn same_as(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `owner/name` on GitHub, the project's full path on GitLab.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RepoName(pub String);

impl RepoName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A forge permission level, ordered from least to most. GitHub's collaborator permission
/// names map one to one; GitLab access levels map as described at
/// [`Permission::from_gitlab_access_level`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    None,
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Permission {
    /// GitHub's `role_name`/`permission` strings.
    pub fn from_github(s: &str) -> Self {
        match s {
            "admin" => Self::Admin,
            "maintain" => Self::Maintain,
            "write" | "push" => Self::Write,
            "triage" => Self::Triage,
            "read" | "pull" => Self::Read,
            _ => Self::None,
        }
    }

    /// GitLab access levels: Reporter 20 → read, Developer 30 → write, Maintainer 40 →
    /// maintain, Owner 50 → admin. Guest (10), Planner (15) and minimal access (5) cannot read
    /// a private project's code: none. GitLab has no `triage`; a policy asking for it admits
    /// Developers and up.
    pub fn from_gitlab_access_level(level: u32) -> Self {
        match level {
            50.. => Self::Admin,
            40..=49 => Self::Maintain,
            30..=39 => Self::Write,
            20..=29 => Self::Read,
            _ => Self::None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Read => "read",
            Self::Triage => "triage",
            Self::Write => "write",
            Self::Maintain => "maintain",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha_parsing_and_prefixes() {
        let sha = CommitSha::parse("ABCDEF0123456789abcdef0123456789abcdef01").expect("valid");
        assert_eq!(sha.as_str(), "abcdef0123456789abcdef0123456789abcdef01");
        assert_eq!(sha.short(), "abcdef0");
        assert!(sha.matches_prefix("abcdef0"));
        assert!(sha.matches_prefix("ABCDEF01234"));
        assert!(
            !sha.matches_prefix("abcdef"),
            "too short to mean one commit"
        );
        assert!(!sha.matches_prefix("abcdef1"));
        assert!(CommitSha::parse("abc").is_none());
        assert!(CommitSha::parse(&"g".repeat(40)).is_none());
    }

    #[test]
    fn permissions_order() {
        assert!(Permission::Admin > Permission::Maintain);
        assert!(Permission::Maintain > Permission::Write);
        assert!(Permission::Write > Permission::Triage);
        assert_eq!(Permission::from_github("push"), Permission::Write);
        assert_eq!(
            Permission::from_gitlab_access_level(40),
            Permission::Maintain
        );
        assert_eq!(Permission::from_gitlab_access_level(30), Permission::Write);
        assert_eq!(Permission::from_gitlab_access_level(50), Permission::Admin);
        assert_eq!(Permission::from_gitlab_access_level(20), Permission::Read);
        assert_eq!(Permission::from_gitlab_access_level(10), Permission::None);
    }
}
