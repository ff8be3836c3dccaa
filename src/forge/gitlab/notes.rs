//! Merge request notes: the card and replies Greenlight writes, the reactions it awards, and
//! the read-back of a note before a command in it acts. A Note Hook's body is only as
//! trustworthy as the webhook secret, which a group hook shares with every project of the
//! group: who wrote a note, what it says and whether it is a system note are taken from the
//! notes API, never from the hook.

use http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{GitLab, id_of};
use super::events::{is_bot_user, timestamp};
use crate::forge::retry::ForgeError;

/// A note as the notes API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteState {
    pub author_id: u64,
    pub author_username: String,
    /// GitLab's `bot` flag where the answer has it, else the usernames GitLab gives bot users.
    pub author_is_bot: bool,
    pub body: String,
    pub system: bool,
    /// Unix milliseconds, GitLab's clock.
    pub created_at: i64,
}

#[derive(Deserialize)]
struct NoteAnswer {
    body: String,
    #[serde(default)]
    system: bool,
    created_at: String,
    author: NoteAuthor,
    #[serde(default)]
    noteable_type: Option<String>,
    #[serde(default)]
    noteable_iid: Option<u64>,
    #[serde(default)]
    project_id: Option<u64>,
}

#[derive(Deserialize)]
struct NoteAuthor {
    id: u64,
    username: String,
    #[serde(default)]
    bot: Option<bool>,
}

impl GitLab {
    /// [Create new merge request note](https://docs.gitlab.com/api/notes/#create-new-merge-request-note).
    pub async fn create_note(&self, project: u64, iid: u64, body: &str) -> Result<u64, ForgeError> {
        let uri = format!("/projects/{project}/merge_requests/{iid}/notes");
        let a = self
            .call(Method::POST, &uri, Some(&json!({ "body": body })), &[])
            .await?;
        id_of(&a)
    }

    /// [Modify existing merge request note](https://docs.gitlab.com/api/notes/#modify-existing-merge-request-note).
    pub async fn update_note(
        &self,
        project: u64,
        iid: u64,
        note: u64,
        body: &str,
    ) -> Result<(), ForgeError> {
        let uri = format!("/projects/{project}/merge_requests/{iid}/notes/{note}");
        self.call(Method::PUT, &uri, Some(&json!({ "body": body })), &[])
            .await?;
        Ok(())
    }

    /// [List all merge request notes](https://docs.gitlab.com/api/notes/#list-all-merge-request-notes),
    /// every page (GitLab counts system notes too, so a busy merge request has hundreds): the
    /// id of the first note containing `marker` that Greenlight's own user (`own`) wrote.
    /// Anyone can paste a marker into a note; only ours is ever adopted as the card or a reply.
    pub async fn find_note(
        &self,
        project: u64,
        iid: u64,
        marker: &str,
        own: u64,
    ) -> Result<Option<u64>, ForgeError> {
        let uri = format!(
            "/projects/{project}/merge_requests/{iid}/notes?sort=asc&order_by=created_at&per_page=100"
        );
        let list = self.list(&uri).await?;
        Ok(list.iter().find_map(|n| {
            let body = n.get("body").and_then(Value::as_str)?;
            let author = n.pointer("/author/id").and_then(Value::as_u64);
            let system = n.get("system").and_then(Value::as_bool).unwrap_or(false);
            (author == Some(own) && !system && body.contains(marker))
                .then(|| n.get("id").and_then(Value::as_u64))
                .flatten()
        }))
    }

    /// [Get single merge request note](https://docs.gitlab.com/api/notes/#get-single-merge-request-note):
    /// the note as GitLab has it, or `None` when it is not a note of merge request `iid` of
    /// `project` (missing, deleted, or on something else).
    pub async fn note(
        &self,
        project: u64,
        iid: u64,
        note: u64,
    ) -> Result<Option<NoteState>, ForgeError> {
        let uri = format!("/projects/{project}/merge_requests/{iid}/notes/{note}");
        let a = match self.call(Method::GET, &uri, None, &[]).await {
            Ok(a) => a,
            Err(ForgeError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let n: NoteAnswer = a.json()?;
        let elsewhere = n
            .noteable_type
            .as_deref()
            .is_some_and(|t| t != "MergeRequest")
            || n.noteable_iid.is_some_and(|i| i != iid)
            || n.project_id.is_some_and(|p| p != project);
        if elsewhere {
            return Ok(None);
        }
        let created_at = timestamp(&n.created_at)
            .map_err(|e| ForgeError::Transient(format!("note answer: {e}")))?;
        Ok(Some(NoteState {
            author_is_bot: is_bot_user(&n.author.username, n.author.bot),
            author_id: n.author.id,
            author_username: n.author.username,
            body: n.body,
            system: n.system,
            created_at,
        }))
    }

    /// [Add a new emoji reaction to a comment](https://docs.gitlab.com/api/emoji_reactions/#add-a-new-emoji-reaction-to-a-comment).
    /// GitLab answers an emoji we already awarded with 404 "Award Emoji Name has already been
    /// taken" (400 on some versions): success. A 404 can also mean the note was deleted since;
    /// then there is nothing to react to either.
    pub async fn award_note_emoji(
        &self,
        project: u64,
        iid: u64,
        note: u64,
        name: &str,
    ) -> Result<(), ForgeError> {
        let uri = format!("/projects/{project}/merge_requests/{iid}/notes/{note}/award_emoji");
        match self
            .call(Method::POST, &uri, Some(&json!({ "name": name })), &[])
            .await
        {
            Ok(_) | Err(ForgeError::NotFound) => Ok(()),
            Err(ForgeError::Rejected { message, .. }) if message.contains("already been taken") => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
