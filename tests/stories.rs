//! The release stories, told once and run on both forges: real router, real workers, real
//! forge clients, GitHub and GitLab faked over HTTP (`tests/common/world*.rs`). Each story is
//! a generic `async fn` over [`World`]; [`both_forges!`] makes a `github::` and a `gitlab::`
//! test of it. Every world ends with the strict teardown ([`World::finish`]): no dead letter,
//! no reply the story did not read, no forge write it never looked at.
//!
//! Wire shapes (request bodies, deployment payloads, pipeline variables, the exact request
//! order) live in `tests/github_wire.rs` and `tests/gitlab_wire.rs`.

mod common;

use common::TestDb;
use common::world::{Kind, Opening, Perm, State, World};

const A: &str = "aaaaaaa1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbb2bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C: &str = "ccccccc3cccccccccccccccccccccccccccccccc";

/// Makes `github::<story>` and `gitlab::<story>` tests of each generic story.
macro_rules! both_forges {
    ($($group:ident :: $story:ident),* $(,)?) => {
        mod github {
            $(
                #[tokio::test]
                async fn $story() {
                    super::$group::$story::<crate::common::world_github::GitHubWorld>().await;
                }
            )*
        }
        mod gitlab {
            $(
                #[tokio::test]
                async fn $story() {
                    super::$group::$story::<crate::common::world_gitlab::GitLabWorld>().await;
                }
            )*
        }
    };
}

#[path = "stories/approvals.rs"]
mod approvals;
#[path = "stories/comments.rs"]
mod comments;
#[path = "stories/deploys.rs"]
mod deploys;
#[path = "stories/pipelines.rs"]
mod pipelines;

both_forges!(
    approvals::people_below_the_permission_cannot_approve,
    approvals::listed_users_and_team_members_may_approve_below_min_permission,
    approvals::self_approval_is_refused_unless_allowed,
    approvals::approval_after_a_new_push_is_stale,
    approvals::approval_with_a_wrong_sha_prefix_is_refused,
    approvals::approvals_accumulate_from_distinct_people,
    approvals::two_approvals_racing_make_one_deploy,
    approvals::a_frozen_environment_refuses_approvals,
    approvals::closed_before_approval,
    pipelines::pipeline_failure_then_retry,
    pipelines::retry_by_a_reader_is_refused,
    pipelines::forks_are_not_built_unless_allowed,
    pipelines::drafts_wait_until_ready_for_review,
    pipelines::an_invalid_policy_posts_a_failing_config_check_and_nothing_else,
    pipelines::without_a_policy_only_help_answers,
    pipelines::the_policy_is_read_again_after_each_push_to_the_default_branch_only,
    pipelines::a_pipeline_start_whose_answer_was_lost_is_not_made_twice,
    pipelines::a_rate_limit_holds_back_every_job_of_the_forge_account,
    deploys::happy_path_from_pull_request_to_production,
    deploys::deploy_failure_is_reported_and_frees_the_environment,
    deploys::a_second_release_waits_for_the_first,
    deploys::the_same_webhook_twice_changes_nothing_twice,
    deploys::a_deploy_start_that_failed_is_looked_for_then_made_again_once,
    deploys::the_reconciler_recovers_runs_whose_webhooks_were_lost,
    deploys::the_release_keeps_the_time_of_the_clock_it_is_given,
    comments::edited_comments_and_bots_never_act,
    comments::unknown_commands_get_help,
    comments::look_alike_commands_never_act,
);

fn eyes(id: u64) -> (u64, String) {
    (id, "eyes".into())
}

fn refused(id: u64) -> [(u64, String); 2] {
    [(id, "eyes".into()), (id, "-1".into())]
}

/// The release of `pr` at `sha` is deploying: the deploy started for it, its release check
/// runs, its card says so.
fn deploying<W: World>(w: &W, pr: u64, sha: &str) {
    assert_eq!(
        w.deploys().last().map(String::as_str),
        Some(sha),
        "{}",
        W::FORGE
    );
    assert_eq!(w.check("greenlight/release", sha), Some(State::Running));
    let card = w.card_of(pr);
    assert!(card.contains("Deploying"), "{card}");
}

fn frozen(policy: &str, reason: &str) -> String {
    policy.replace(
        "environment = \"production\"",
        &format!("environment = \"production\"\nfrozen = true\nfreeze_reason = \"{reason}\""),
    )
}
