use super::*;

fn sha(c: char) -> CommitSha {
    CommitSha::parse(&c.to_string().repeat(40)).expect("sha")
}

fn facts<'a>(release_sha: &'a CommitSha, deploy_sha: &'a CommitSha, ours: Ours) -> GateFacts<'a> {
    GateFacts {
        environment: "production",
        sha: Some(deploy_sha),
        creator: Some("greenlight[bot]"),
        created_by_greenlight: true,
        release: Some(ReleaseFacts {
            ours,
            stage: Stage::Deploying,
            environment: "production",
            sha: release_sha,
        }),
        gates: Some(Ok(())),
    }
}

#[test]
fn greenlights_own_deploy_with_open_gates_is_approved() {
    let (a, main) = (sha('a'), sha('c'));
    assert_eq!(
        decide(&facts(&a, &a, Ours::Deployment)),
        GateAnswer::Approve
    );
    // A job's deployment is of the default branch head, not of the release's commit.
    assert_eq!(decide(&facts(&a, &main, Ours::Run)), GateAnswer::Approve);
}

#[test]
fn a_deployment_greenlight_did_not_start_is_rejected() {
    let a = sha('a');
    let mut f = facts(&a, &a, Ours::Run);
    f.release = None;
    let answer = decide(&f);
    assert_eq!(
        answer,
        GateAnswer::Reject(GateRefusal::NotStartedByGreenlight)
    );
    let text = comment(&answer, None, None);
    assert!(text.contains("/approve-release"), "{text}");
}

#[test]
fn a_deployment_by_someone_else_is_rejected_even_in_greenlights_run() {
    let a = sha('a');
    let mut f = facts(&a, &a, Ours::Run);
    f.created_by_greenlight = false;
    f.creator = Some("mallory");
    assert_eq!(
        decide(&f),
        GateAnswer::Reject(GateRefusal::CreatedBySomeoneElse {
            creator: "mallory".into()
        })
    );
}

#[test]
fn environment_stage_and_commit_must_be_the_releases() {
    let (a, b) = (sha('a'), sha('b'));
    let mut f = facts(&a, &a, Ours::Deployment);
    f.environment = "staging";
    assert_eq!(decide(&f).state(), "rejected");
    let mut f = facts(&a, &a, Ours::Deployment);
    if let Some(r) = f.release.as_mut() {
        r.stage = Stage::Deployed;
    }
    assert_eq!(
        decide(&f),
        GateAnswer::Reject(GateRefusal::NotDeploying {
            stage: Stage::Deployed
        })
    );
    assert_eq!(
        decide(&facts(&a, &b, Ours::Deployment)),
        GateAnswer::Reject(GateRefusal::OtherCommit { release: a.clone() })
    );
}

#[test]
fn a_gate_that_holds_now_rejects() {
    let a = sha('a');
    let mut f = facts(&a, &a, Ours::Run);
    f.gates = Some(Err(Hold::Frozen {
        reason: "incident".into(),
    }));
    let answer = decide(&f);
    assert_eq!(answer.state(), "rejected");
    let text = comment(&answer, Some(7), Some(&a));
    assert!(text.contains("frozen: incident"), "{text}");
    f.gates = None;
    assert_eq!(decide(&f), GateAnswer::Reject(GateRefusal::NoPolicy));
}

#[test]
fn the_approval_names_the_pull_request_and_commit() {
    let a = sha('a');
    assert_eq!(
        comment(&GateAnswer::Approve, Some(7), Some(&a)),
        "Greenlight: approved #7 at aaaaaaa, as approved in the pull request."
    );
}

// GitLab: the deployment's job runs in Greenlight's deploy pipeline; the commit compared is
// the pipeline's `GREENLIGHT_SHA`.

#[test]
fn greenlights_own_deploy_pipeline_is_approved() {
    let a = sha('a');
    assert_eq!(decide(&facts(&a, &a, Ours::Pipeline)), GateAnswer::Approve);
}

#[test]
fn a_pipeline_deploying_another_commit_is_rejected() {
    let (a, b) = (sha('a'), sha('b'));
    assert_eq!(
        decide(&facts(&a, &b, Ours::Pipeline)),
        GateAnswer::Reject(GateRefusal::OtherCommit { release: a.clone() })
    );
    // No GREENLIGHT_SHA at all: not the approved commit either.
    let mut f = facts(&a, &a, Ours::Pipeline);
    f.sha = None;
    assert_eq!(
        decide(&f),
        GateAnswer::Reject(GateRefusal::OtherCommit { release: a.clone() })
    );
}

#[test]
fn a_job_of_greenlights_pipeline_retried_by_someone_else_is_rejected() {
    let a = sha('a');
    let mut f = facts(&a, &a, Ours::Pipeline);
    f.created_by_greenlight = false;
    f.creator = Some("mona");
    assert_eq!(
        decide(&f),
        GateAnswer::Reject(GateRefusal::CreatedBySomeoneElse {
            creator: "mona".into()
        })
    );
}

#[test]
fn greenlights_pipeline_under_a_freeze_is_rejected() {
    let a = sha('a');
    let mut f = facts(&a, &a, Ours::Pipeline);
    f.gates = Some(Err(Hold::Frozen {
        reason: "incident".into(),
    }));
    assert_eq!(
        decide(&f),
        GateAnswer::Reject(GateRefusal::Held(Hold::Frozen {
            reason: "incident".into()
        }))
    );
}

#[test]
fn greenlights_pipeline_of_a_finished_release_is_rejected() {
    let a = sha('a');
    let mut f = facts(&a, &a, Ours::Pipeline);
    if let Some(r) = f.release.as_mut() {
        r.stage = Stage::Deployed;
    }
    assert_eq!(
        decide(&f),
        GateAnswer::Reject(GateRefusal::NotDeploying {
            stage: Stage::Deployed
        })
    );
}
