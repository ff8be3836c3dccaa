//! The repository policy: `.github/greenlight.toml` (GitHub) or `.gitlab/greenlight.toml`
//! (GitLab), read from the default branch only.
//!
//! Strict on purpose: an unknown key or a bad value is an error with its line and column,
//! never silently ignored (a misspelt `min_permision` must not fall back to a weaker default).

use std::fmt;
use std::ops::Range;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use crate::release::Forge;
use crate::release::Permission;

/// Where GitHub repositories keep their policy.
pub const GITHUB_PATH: &str = ".github/greenlight.toml";
/// Where GitLab projects keep their policy.
pub const GITLAB_PATH: &str = ".gitlab/greenlight.toml";

/// A repository's release policy. Its JSON Schema (`schema/greenlight.schema.json`,
/// `greenlight schema`) describes the file, as read by [`parse_for`].
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[schemars(
    with = "RawPolicy",
    description = "Greenlight's repository policy: `.github/greenlight.toml` (GitHub) or \
                   `.gitlab/greenlight.toml` (GitLab), read from the default branch only."
)]
pub struct Policy {
    pub pipeline: Pipeline,
    pub deploy: Deploy,
    pub approvals: Approvals,
    pub pull_requests: PullRequests,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// GitHub: workflow file name in `.github/workflows/` (with `workflow_dispatch` inputs
    /// `sha` and `pr`). GitLab: unused (the project's CI configuration runs).
    pub workflow: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    /// GitHub: workflow file name (inputs `sha`, `environment`, `deployment_id`).
    pub workflow: String,
    pub environment: String,
    /// While frozen, approvals are refused with `freeze_reason`.
    pub frozen: bool,
    pub freeze_reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approvals {
    /// Distinct approvers needed before the deploy starts.
    pub required: u8,
    /// Forge permission an approver needs, unless listed in `users` or a member of `teams`.
    pub min_permission: Permission,
    pub users: Vec<String>,
    /// `org/team-slug` (GitHub) or group path (GitLab).
    pub teams: Vec<String>,
    pub allow_self_approval: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequests {
    pub allow_forks: bool,
    /// Build draft pull requests too.
    pub drafts: bool,
}

/// Why a policy file was rejected, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// 1-based; 1 when the problem is the file as a whole.
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for PolicyError {}

impl Policy {
    /// Who may approve, in words: "people with maintain permission or more, @alice, members of
    /// acme/release" (GitHub's wording; see [`Policy::describe_approvers_on`]).
    pub fn describe_approvers(&self) -> String {
        self.describe_approvers_on(Forge::GitHub)
    }

    /// Who may approve, in the words of `forge` ("pull request" or "merge request").
    pub fn describe_approvers_on(&self, forge: Forge) -> String {
        let a = &self.approvals;
        let mut parts = vec![format!(
            "people with `{}` permission or higher",
            a.min_permission
        )];
        parts.extend(a.users.iter().map(|u| format!("@{u}")));
        parts.extend(a.teams.iter().map(|t| format!("members of @{t}")));
        let mut text = match parts.len() {
            1 => parts.remove(0),
            _ => {
                let last = parts.pop().unwrap_or_default();
                format!("{} or {last}", parts.join(", "))
            }
        };
        if !a.allow_self_approval {
            text.push_str(match forge {
                Forge::GitHub => " (not the pull request's author)",
                Forge::GitLab => " (not the merge request's author)",
            });
        }
        text
    }
}

/// Greenlight's repository policy: `.github/greenlight.toml` (GitHub) or
/// `.gitlab/greenlight.toml` (GitLab), read from the default branch only.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Greenlight policy", extend("required" = ["deploy"]))]
struct RawPolicy {
    /// The pipeline built for the commit under review. Required on GitHub (the workflow to
    /// dispatch); optional and unused on GitLab (the project's own CI configuration runs).
    #[serde(default)]
    #[schemars(with = "RawPipeline")]
    pipeline: Option<RawPipeline>,
    /// The deploy started once the approvals are in. Required on both forges.
    // An `Option` so that a missing section is reported in a fixed order (`pipeline` first
    // on GitHub).
    #[serde(default)]
    #[schemars(with = "RawDeploy")]
    deploy: Option<RawDeploy>,
    /// Who may approve a release, and how many must.
    #[serde(default)]
    approvals: RawApprovals,
    /// Which pull requests (merge requests) are built.
    #[serde(default)]
    pull_requests: RawPullRequests,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Pipeline")]
struct RawPipeline {
    /// GitHub (required): a workflow file name in `.github/workflows/`, like `ci.yml`, with
    /// `on: workflow_dispatch` and inputs `sha` and `pr`. GitLab: unused.
    #[serde(default)]
    #[schemars(
        with = "String",
        skip_serializing_if = "Option::is_none",
        regex(pattern = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*\.ya?ml$")
    )]
    workflow: Option<Spanned<String>>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Deploy")]
struct RawDeploy {
    /// GitHub (required): a workflow file name in `.github/workflows/`, like `deploy.yml`,
    /// with inputs `sha`, `environment` and `deployment_id`. GitLab: unused.
    #[serde(default)]
    #[schemars(
        with = "String",
        skip_serializing_if = "Option::is_none",
        regex(pattern = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*\.ya?ml$")
    )]
    workflow: Option<Spanned<String>>,
    /// The forge environment deployed to.
    #[serde(default = "default_environment")]
    #[schemars(with = "String", length(min = 1, max = 255), regex(pattern = r"\S"))]
    environment: Spanned<String>,
    /// While frozen, every approval is refused with `freeze_reason`.
    #[serde(default)]
    frozen: bool,
    /// Why deploys are frozen, shown to whoever approves.
    #[serde(default)]
    #[schemars(with = "String", extend("default" = "deploys are frozen"))]
    freeze_reason: Option<String>,
}

fn default_environment() -> Spanned<String> {
    Spanned::new(0..0, "production".to_owned())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Approvals")]
struct RawApprovals {
    /// Distinct approvers needed before the deploy starts.
    #[serde(default = "default_required")]
    #[schemars(with = "u8", range(min = 1, max = 10))]
    required: Spanned<i64>,
    /// The forge permission an approver needs, unless listed in `users` or a member of
    /// `teams`. GitLab: Reporter is read, Developer write (and triage), Maintainer maintain,
    /// Owner admin.
    #[serde(default = "default_permission")]
    #[schemars(
        with = "String",
        extend("enum" = ["read", "triage", "write", "maintain", "admin"])
    )]
    min_permission: Spanned<Permission>,
    /// User names allowed to approve whatever their permission (a leading `@` is allowed).
    #[serde(default)]
    #[schemars(
        with = "Vec<String>",
        inner(regex(pattern = r"^@?[A-Za-z0-9_.\[\]-]{1,255}$"))
    )]
    users: Vec<Spanned<String>>,
    /// Teams whose members may approve: `org/team-slug` on GitHub, a group path (like
    /// `acme/release`, or a single top-level group) on GitLab.
    #[serde(default)]
    #[schemars(
        with = "Vec<String>",
        inner(regex(pattern = r"^@?[A-Za-z0-9_.\[\]-]+(/.+)?$"))
    )]
    teams: Vec<Spanned<String>>,
    /// May the pull request's (merge request's) author approve their own change?
    #[serde(default)]
    allow_self_approval: bool,
}

impl Default for RawApprovals {
    fn default() -> Self {
        Self {
            required: default_required(),
            min_permission: default_permission(),
            users: Vec::new(),
            teams: Vec::new(),
            allow_self_approval: false,
        }
    }
}

fn default_required() -> Spanned<i64> {
    Spanned::new(0..0, 1)
}

fn default_permission() -> Spanned<Permission> {
    Spanned::new(0..0, Permission::Maintain)
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PullRequests")]
struct RawPullRequests {
    /// Build pull requests from forks (their code runs in your pipeline).
    #[serde(default)]
    allow_forks: bool,
    /// Build draft pull requests (draft merge requests) too.
    #[serde(default)]
    drafts: bool,
}

/// Parses and validates a GitHub policy file (`.github/greenlight.toml`).
pub fn parse(text: &str) -> Result<Policy, PolicyError> {
    parse_for(text, Forge::GitHub)
}

/// Parses and validates a policy file for `forge`. The schema is the same; on GitLab the
/// `workflow` keys are optional and unused (the project's own CI configuration runs, see the
/// README), and a `teams` entry is a group path, which may be a single top-level group.
pub fn parse_for(text: &str, forge: Forge) -> Result<Policy, PolicyError> {
    let raw: RawPolicy = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let mut message = e.message().trim_end().to_owned();
        if message.is_empty() {
            // toml says nothing about some bad characters (a NUL in a comment, say).
            message = match text.get(span.clone()).and_then(|s| s.chars().next()) {
                Some(c) => format!("invalid character {c:?}: not valid TOML here"),
                None => "not valid TOML here".to_owned(),
            };
        }
        at(text, span, message)
    })?;
    let err = |span: Range<usize>, message: String| Err(at(text, span, message));

    let pipeline_workflow = raw.pipeline.as_ref().and_then(|p| p.workflow.as_ref());
    if forge == Forge::GitHub {
        let Some(pipeline) = &raw.pipeline else {
            return err(0..0, "missing field `pipeline`".into());
        };
        if pipeline.workflow.is_none() {
            return err(0..0, "missing field `workflow` in `[pipeline]`".into());
        }
    }
    let Some(deploy) = raw.deploy else {
        return err(0..0, "missing field `deploy`".into());
    };
    if forge == Forge::GitHub {
        if deploy.workflow.is_none() {
            return err(0..0, "missing field `workflow` in `[deploy]`".into());
        }
        for w in [pipeline_workflow, deploy.workflow.as_ref()]
            .into_iter()
            .flatten()
        {
            if let Err(why) = check_workflow(w.get_ref()) {
                return err(w.span(), why);
            }
        }
    }
    let env = &deploy.environment;
    if env.get_ref().trim().is_empty() || env.get_ref().len() > 255 {
        return err(
            env.span(),
            "environment must be a non-empty name of at most 255 characters".into(),
        );
    }
    let required = &raw.approvals.required;
    let Ok(count @ 1..=10) = u8::try_from(*required.get_ref()) else {
        return err(
            required.span(),
            format!(
                "required must be between 1 and 10, not {}",
                required.get_ref()
            ),
        );
    };
    let min = &raw.approvals.min_permission;
    if *min.get_ref() < Permission::Read {
        return err(
            min.span(),
            "min_permission must be read, triage, write, maintain or admin".into(),
        );
    }
    for user in &raw.approvals.users {
        if !is_login(user.get_ref()) {
            return err(
                user.span(),
                format!("{:?} is not a user name", user.get_ref()),
            );
        }
    }
    for team in &raw.approvals.teams {
        let name = team.get_ref();
        let ok = match forge {
            Forge::GitHub => name
                .split_once('/')
                .is_some_and(|(org, slug)| is_login(org) && !slug.is_empty()),
            Forge::GitLab => !name.is_empty() && name.split('/').all(is_login),
        };
        if !ok {
            let form = match forge {
                Forge::GitHub => "org/team-slug",
                Forge::GitLab => "a group path, like acme/release",
            };
            return err(team.span(), format!("team {name:?} must be written {form}"));
        }
    }
    Ok(Policy {
        pipeline: Pipeline {
            workflow: pipeline_workflow
                .map(|w| w.get_ref().clone())
                .unwrap_or_default(),
        },
        deploy: Deploy {
            workflow: deploy.workflow.map(Spanned::into_inner).unwrap_or_default(),
            environment: deploy.environment.into_inner(),
            frozen: deploy.frozen,
            freeze_reason: deploy
                .freeze_reason
                .unwrap_or_else(|| "deploys are frozen".into()),
        },
        approvals: Approvals {
            required: count,
            min_permission: *min.get_ref(),
            users: raw
                .approvals
                .users
                .into_iter()
                .map(|u| u.into_inner().trim_start_matches('@').to_owned())
                .collect(),
            teams: raw
                .approvals
                .teams
                .into_iter()
                .map(|t| t.into_inner().trim_start_matches('@').to_owned())
                .collect(),
            allow_self_approval: raw.approvals.allow_self_approval,
        },
        pull_requests: PullRequests {
            allow_forks: raw.pull_requests.allow_forks,
            drafts: raw.pull_requests.drafts,
        },
    })
}

/// A workflow file name: `ci.yml`, not a path, not a URL.
fn check_workflow(name: &str) -> Result<(), String> {
    let ok = (name.ends_with(".yml") || name.ends_with(".yaml"))
        && !name.contains('/')
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "workflow {name:?} must be a file name in .github/workflows, like \"ci.yml\""
        ))
    }
}

/// A forge user or organisation name (an optional leading `@` is allowed).
fn is_login(s: &str) -> bool {
    let s = s.strip_prefix('@').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.[]".contains(c))
}

/// An error at a byte offset, as 1-based line and column.
fn at(text: &str, span: Range<usize>, message: String) -> PolicyError {
    let offset = span.start.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    PolicyError {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "[pipeline]\nworkflow = \"ci.yml\"\n\n[deploy]\nworkflow = \"deploy.yml\"\n";

    fn error(text: &str) -> PolicyError {
        parse(text).expect_err("should be rejected")
    }

    #[test]
    fn minimal_policy_has_safe_defaults() {
        let p = parse(MINIMAL).expect("valid");
        assert_eq!(p.pipeline.workflow, "ci.yml");
        assert_eq!(p.deploy.environment, "production");
        assert_eq!(p.approvals.required, 1);
        assert_eq!(p.approvals.min_permission, Permission::Maintain);
        assert!(!p.approvals.allow_self_approval);
        assert!(!p.pull_requests.allow_forks);
        assert!(!p.pull_requests.drafts);
        assert!(!p.deploy.frozen);
    }

    #[test]
    fn example_file_parses() {
        let p = parse(include_str!("../../greenlight.example.toml"))
            .expect("the shipped example is valid");
        assert_eq!(p.approvals.teams, vec!["acme/release-managers".to_owned()]);
    }

    #[test]
    fn unknown_key_names_its_line() {
        let e = error(&format!(
            "{MINIMAL}\n[approvals]\nmin_permision = \"write\"\n"
        ));
        assert_eq!(e.line, 8, "{e}");
        assert!(e.message.contains("min_permision"), "{e}");
    }

    #[test]
    fn unknown_table_is_an_error() {
        let e = error(&format!("{MINIMAL}[deploy_settings]\nx = 1\n"));
        assert!(e.message.contains("deploy_settings"), "{e}");
    }

    #[test]
    fn bad_permission_names_its_line() {
        let e = error(&format!(
            "{MINIMAL}[approvals]\nmin_permission = \"owner\"\n"
        ));
        assert_eq!(e.line, 7, "{e}");
        assert!(e.message.contains("owner"), "{e}");
        let e = error(&format!(
            "{MINIMAL}[approvals]\nmin_permission = \"none\"\n"
        ));
        assert_eq!(e.line, 7, "{e}");
    }

    #[test]
    fn required_out_of_range() {
        for bad in ["0", "-1", "11", "300"] {
            let e = error(&format!("{MINIMAL}[approvals]\nrequired = {bad}\n"));
            assert_eq!(e.line, 7, "{bad}: {e}");
            assert!(e.message.contains("between 1 and 10"), "{e}");
        }
        let e = error(&format!("{MINIMAL}[approvals]\nrequired = \"two\"\n"));
        assert_eq!(e.line, 7, "{e}");
    }

    #[test]
    fn workflow_must_be_a_file_name() {
        let e = error(
            "[pipeline]\nworkflow = \"../../evil.yml\"\n[deploy]\nworkflow = \"deploy.yml\"\n",
        );
        assert_eq!((e.line, e.column), (2, 12), "{e}");
        let e = error("[pipeline]\nworkflow = \"ci.yml\"\n[deploy]\nworkflow = \"deploy\"\n");
        assert_eq!(e.line, 4, "{e}");
    }

    #[test]
    fn gitlab_needs_no_workflows_and_takes_group_paths() {
        let p = parse_for(
            "[deploy]\nenvironment = \"staging\"\n[approvals]\nteams = [\"acme\", \"acme/platform/release\"]\n",
            Forge::GitLab,
        )
        .expect("valid on GitLab");
        assert_eq!(p.deploy.environment, "staging");
        assert_eq!(p.approvals.teams, vec!["acme", "acme/platform/release"]);
        assert!(p.pipeline.workflow.is_empty());
        let e = parse_for("[deploy]\n", Forge::GitHub).expect_err("GitHub needs workflows");
        assert!(e.message.contains("pipeline"), "{e}");
        let e = parse_for(
            "[deploy]\n[approvals]\nteams = [\"acme//x\"]\n",
            Forge::GitLab,
        )
        .expect_err("not a path");
        assert_eq!(e.line, 3, "{e}");
        assert!(
            parse_for("[deploy]\nflavour = 1\n", Forge::GitLab).is_err(),
            "unknown keys"
        );
    }

    #[test]
    fn missing_sections_are_errors() {
        let e = error("[pipeline]\nworkflow = \"ci.yml\"\n");
        assert!(e.message.contains("deploy"), "{e}");
        let e = error("");
        assert!(e.message.contains("pipeline"), "{e}");
    }

    #[test]
    fn wrong_types_and_syntax() {
        let e = error(&format!(
            "{MINIMAL}[pull_requests]\nallow_forks = \"yes\"\n"
        ));
        assert_eq!(e.line, 7, "{e}");
        let e = error("[pipeline\nworkflow = 1");
        assert_eq!(e.line, 1, "{e}");
    }

    #[test]
    fn teams_need_an_org() {
        let e = error(&format!("{MINIMAL}[approvals]\nteams = [\"release\"]\n"));
        assert_eq!(e.line, 7, "{e}");
        assert!(e.message.contains("org/team-slug"), "{e}");
    }

    #[test]
    fn users_may_be_written_with_at() {
        let p = parse(&format!(
            "{MINIMAL}[approvals]\nusers = [\"@alice\", \"bob\"]\n"
        ))
        .expect("valid");
        assert_eq!(
            p.approvals.users,
            vec!["alice".to_owned(), "bob".to_owned()]
        );
        let e = error(&format!("{MINIMAL}[approvals]\nusers = [\"not a user\"]\n"));
        assert_eq!(e.line, 7, "{e}");
    }

    #[test]
    fn approvers_described_in_words() {
        let mut p = parse(MINIMAL).expect("valid");
        assert_eq!(
            p.describe_approvers(),
            "people with `maintain` permission or higher (not the pull request's author)"
        );
        p.approvals.users = vec!["alice".into()];
        p.approvals.teams = vec!["acme/ops".into()];
        p.approvals.allow_self_approval = true;
        assert_eq!(
            p.describe_approvers(),
            "people with `maintain` permission or higher, @alice or members of @acme/ops"
        );
    }

    #[test]
    fn freeze() {
        let p = parse(&format!(
            "{MINIMAL}frozen = true\nfreeze_reason = \"holiday\"\n"
        ))
        .expect("valid");
        assert!(p.deploy.frozen);
        assert_eq!(p.deploy.freeze_reason, "holiday");
    }

    #[test]
    fn fuzz_regression_control_character_in_a_comment() {
        // Found by fuzz/fuzz_targets/policy.rs: toml reports a NUL in a comment with an empty
        // message; the check run must still say something.
        let e = error("# Greenlight policy. Copy \0\0 to .github\n[pipeline]\n");
        assert_eq!(e.message, "invalid character '\\0': not valid TOML here");
        assert_eq!((e.line, e.column), (1, 27));
    }
}
