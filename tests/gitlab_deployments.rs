//! GitLab deployments that slipped past Greenlight: a Deployment Hook for the policy's deploy
//! environment whose job did not run in a deploy pipeline Greenlight created gives one
//! `unapproved_deployment` audit entry (however many status hooks), a warning, and
//! `greenlight_unapproved_deployments_total{forge="gitlab"}`. The hook names the job, not its
//! pipeline: the job's pipeline is asked of GitLab's jobs API. Real router, workers, client;
//! GitLab faked over HTTP as its API documents.

mod common;

use common::TestDb;
use common::flow_gitlab::{GitLabFlow, POLICY};
use common::gitlab_events::{deployment, merge_request};
use serde_json::json;

const A: &str = "aaaaaaa1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbb2bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const MR: &str = "Merge Request Hook";
const NOTE: &str = "Note Hook";
const PIPELINE: &str = "Pipeline Hook";
const DEPLOYMENT: &str = "Deployment Hook";

const AUTHOR: (u64, &str) = (1, "octocat");
const MONA: (u64, &str) = (5, "mona");

async fn unapproved(flow: &GitLabFlow) -> Vec<greenlight::store::AuditEntry> {
    let log = flow.store.audit_log(None, 1000).await.expect("audit");
    log.into_iter()
        .filter(|e| e.action == "unapproved_deployment")
        .collect()
}

/// `greenlight_unapproved_deployments_total{forge="gitlab"}` as `/metrics` says it.
async fn unapproved_metric(flow: &GitLabFlow) -> String {
    let text = reqwest::get(flow.url("/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    text.lines()
        .find(|l| l.starts_with("greenlight_unapproved_deployments_total{forge=\"gitlab\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or("absent")
        .to_owned()
}

/// A pipeline someone ran by hand on main, with job `job` in it: not Greenlight's.
fn hand_run_pipeline(flow: &GitLabFlow, id: u64, job: u64) {
    flow.gl.with(|m| {
        m.pipelines.insert(
            id,
            json!({ "id": id, "ref": "main", "sha": B, "status": "running", "source": "web",
                    "jobs": "running", "variables": [] }),
        );
        m.jobs.insert(job, id);
    });
}

#[tokio::test]
async fn a_deployment_greenlight_did_not_start_is_recorded_once() {
    for db in TestDb::all().await {
        let label = db.label;
        let flow = GitLabFlow::start_on(db, Some(POLICY)).await;
        hand_run_pipeline(&flow, 700, 900);
        assert_eq!(unapproved_metric(&flow).await, "0", "{label}");
        for status in ["created", "running", "success"] {
            let hook = deployment(31, 900, "production", B, MONA, status);
            assert_eq!(flow.send(DEPLOYMENT, hook).await, 202, "{label}");
        }
        // Another environment is not governed by the policy.
        hand_run_pipeline(&flow, 701, 901);
        let staging = deployment(32, 901, "staging", B, MONA, "success");
        assert_eq!(flow.send(DEPLOYMENT, staging).await, 202, "{label}");

        let entries = unapproved(&flow).await;
        assert_eq!(entries.len(), 1, "{label}: {entries:#?}");
        let e = &entries[0];
        assert_eq!(
            (e.forge.as_str(), e.actor.as_str(), e.sha.as_str()),
            ("gitlab", "mona (5)", B),
            "{label}"
        );
        assert!(
            e.reason.contains("deployment 31 to production"),
            "{label}: {}",
            e.reason
        );
        assert_eq!(unapproved_metric(&flow).await, "1", "{label}");
        assert!(flow.dead().await.is_empty(), "{label}");
        // Detection writes nothing to GitLab.
        assert!(
            flow.gl.writes().is_empty(),
            "{label}: {:#?}",
            flow.gl.writes()
        );
        flow.stop().await;
    }
}

#[tokio::test]
async fn greenlights_own_deploy_pipeline_is_not_recorded() {
    for db in TestDb::all().await {
        let label = db.label;
        let flow = GitLabFlow::start_on(db, Some(POLICY)).await;
        flow.gl.set_access(MONA.0, 40);
        flow.gl.set_mr(7, A, AUTHOR.1, "opened", false);
        flow.send(MR, merge_request("open", 7, A, AUTHOR.0, false))
            .await;
        let p = flow.gl.last_pipeline("feature-7");
        flow.send(PIPELINE, flow.gl.pipeline_hook(&p, "success"))
            .await;
        let note = flow.gl.note_hook(7, 5001, MONA, "/approve-release aaaaaaa");
        assert_eq!(flow.send(NOTE, note).await, 202, "{label}");
        let deploy = flow.gl.deploys().pop().expect("a deploy pipeline");
        let deploy_id = deploy["id"].as_u64().expect("id");
        flow.gl.with(|m| m.jobs.insert(950, deploy_id));

        // Mona retried the deploy job of Greenlight's pipeline: the deployment is hers by
        // GitLab's account, Greenlight's by its pipeline.
        for status in ["running", "success"] {
            let hook = deployment(40, 950, "production", A, MONA, status);
            assert_eq!(flow.send(DEPLOYMENT, hook).await, 202, "{label}");
        }
        assert!(unapproved(&flow).await.is_empty(), "{label}");
        assert_eq!(unapproved_metric(&flow).await, "0", "{label}");
        let asked = flow
            .gl
            .calls()
            .iter()
            .filter(|c| c.method == "GET" && c.path == "/jobs/950")
            .count();
        assert!(asked >= 1, "{label}: the job's pipeline is asked of GitLab");
        assert!(flow.dead().await.is_empty(), "{label}");
        flow.stop().await;
    }
}
