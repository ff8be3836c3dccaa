//! The authorization matrix: every combination of who comments, on what, and how, through the
//! real flow; a deployment happens in exactly the rows that should deploy, and in no other.
//! Besides the classic axes: whether the commenter pushed the head, renamed their account
//! since the pull request was opened (the same user id under a new login), or wrote the
//! comment before the head arrived.

mod common;

use common::fake_github::user_id;
use common::flow::Flow;
use common::github_events::{comment, pull_request, pull_request_from, workflow_run};
use serde_json::json;

const POLICY: &str = r#"
[pipeline]
workflow = "ci.yml"
[deploy]
workflow = "deploy.yml"
[approvals]
required = 1
min_permission = "maintain"
teams = ["acme/release"]
allow_self_approval = false
[pull_requests]
allow_forks = false
"#;

#[derive(Debug, Clone, Copy)]
struct Row {
    permission: &'static str,
    is_author: bool,
    in_team: bool,
    stale_sha: bool,
    closed: bool,
    edited: bool,
    bot: bool,
    fork: bool,
    /// The commenter pushed the head (sent its `opened`/`synchronize`).
    pusher: bool,
    /// The commenter's login changed since the pull request was opened (same user id).
    renamed: bool,
    /// The comment was written before the head arrived.
    comment_old: bool,
}

impl Row {
    fn should_deploy(&self) -> bool {
        let allowed = matches!(self.permission, "maintain" | "admin") || self.in_team;
        allowed
            && !self.is_author
            && !self.stale_sha
            && !self.closed
            && !self.edited
            && !self.bot
            && !self.fork
            && !self.pusher
            && !self.comment_old
    }
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    let flags = [false, true];
    for permission in ["none", "read", "write", "maintain", "admin"] {
        for is_author in flags {
            for in_team in flags {
                for stale_sha in flags {
                    for closed in flags {
                        for edited in flags {
                            for bot in flags {
                                for fork in flags {
                                    rows.push(Row {
                                        permission,
                                        is_author,
                                        in_team,
                                        stale_sha,
                                        closed,
                                        edited,
                                        bot,
                                        fork,
                                        pusher: false,
                                        renamed: false,
                                        comment_old: false,
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    // The newer axes, each combination, against who may approve at all.
    for pusher in flags {
        for renamed in flags {
            for comment_old in flags {
                if !(pusher || renamed || comment_old) {
                    continue;
                }
                for permission in ["write", "maintain"] {
                    for is_author in flags {
                        for in_team in flags {
                            rows.push(Row {
                                permission,
                                is_author,
                                in_team,
                                stale_sha: false,
                                closed: false,
                                edited: false,
                                bot: false,
                                fork: false,
                                pusher,
                                renamed,
                                comment_old,
                            });
                        }
                    }
                }
            }
        }
    }
    rows
}

/// Commit ids that differ in their first digits, so a prefix names exactly one.
fn sha(n: usize) -> String {
    format!("{n:08x}{}", "a".repeat(32))
}

/// Plays one row on pull request `pr`; returns whether a deployment was created for it.
async fn play(flow: &Flow, pr: u64, row: Row) -> bool {
    // Who comments: their login when the pull request was opened, and now.
    let original = if row.bot {
        format!("release{pr}[bot]")
    } else {
        format!("user{pr}")
    };
    let commenter = if row.renamed {
        format!("{original}-renamed")
    } else {
        original.clone()
    };
    let commenter_id = user_id(&original);
    let author = if row.is_author {
        original.clone()
    } else {
        format!("author{pr}")
    };
    let pusher = if row.pusher { &original } else { &author };
    flow.gh.set_permission(&commenter, row.permission);
    if row.in_team {
        flow.gh.with(|m| {
            m.team_members
                .entry("acme/release".into())
                .or_default()
                .push(commenter.clone())
        });
    }
    let head_repo = if row.fork {
        "fork/widgets"
    } else {
        common::fake_github::REPO
    };
    let old = sha(pr as usize * 2);
    let head = sha(pr as usize * 2 + 1);
    let mut shas = vec![old.clone()];
    if row.stale_sha {
        shas.push(head.clone());
    }
    for (i, s) in shas.iter().enumerate() {
        flow.gh.set_pull(pr, s, &author, "open");
        let action = if i == 0 { "opened" } else { "synchronize" };
        let mut event = pull_request_from(action, pr, s, &author, head_repo, false);
        event["sender"] = json!({ "login": pusher, "id": user_id(pusher), "type": "User" });
        flow.send("pull_request", event).await;
        if !row.fork {
            let run = flow.gh.last_run("ci.yml");
            flow.send(
                "workflow_run",
                workflow_run("completed", run, "ci.yml", s, Some("success")),
            )
            .await;
        }
    }
    if row.closed {
        let current = shas.last().expect("a head");
        flow.gh.set_pull(pr, current, &author, "closed");
        flow.send("pull_request", pull_request("closed", pr, current, &author))
            .await;
    }
    let before = flow.gh.deployments().len();
    let action = if row.edited { "edited" } else { "created" };
    // Approve what the reviewer saw first: the old commit (stale when a newer one was pushed).
    let body = format!("/approve-release {}", &old[..12]);
    let mut event = comment(action, pr, pr * 10, &commenter, &body);
    event["comment"]["user"]["id"] = json!(commenter_id);
    event["sender"]["id"] = json!(commenter_id);
    if row.comment_old {
        let written = chrono::Utc::now() - chrono::Duration::seconds(60);
        event["comment"]["created_at"] = json!(written.to_rfc3339());
    }
    flow.send("issue_comment", event).await;
    let deployed = flow.gh.deployments().len() > before;
    if deployed {
        // Free the environment for the next row.
        let run = flow.gh.last_run("deploy.yml");
        flow.send(
            "workflow_run",
            workflow_run("completed", run, "deploy.yml", &old, Some("success")),
        )
        .await;
    }
    deployed
}

#[tokio::test]
async fn a_deployment_happens_exactly_when_it_should() {
    let flow = Flow::start(Some(POLICY)).await;
    let rows = rows();
    let mut wrong = Vec::new();
    let mut deployed_rows = 0;
    for (i, row) in rows.iter().enumerate() {
        let pr = i as u64 + 1;
        let deployed = play(&flow, pr, *row).await;
        deployed_rows += usize::from(deployed);
        if deployed != row.should_deploy() {
            wrong.push(format!("#{pr} {row:?}: deployed={deployed}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong rows:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    let expected = rows.iter().filter(|r| r.should_deploy()).count();
    assert_eq!(
        expected, 10,
        "7 classic rows, and 3 where only the login changed"
    );
    assert_eq!(deployed_rows, expected);
    println!(
        "authorization matrix: {} rows, {} deployed, {} refused or ignored",
        rows.len(),
        expected,
        rows.len() - expected
    );
    assert!(flow.dead().await.is_empty(), "{:?}", flow.dead().await);
    flow.stop().await;
}
