//! Who may approve, from GitLab's member APIs (by numeric user id, never the hook's word).
//!
//! A policy `teams` entry on GitLab names a group, and counts the people who belong to that
//! group or one of its subgroups: its direct members and the direct members of its
//! descendant groups. Members inherited from parent groups do not count
//! (`/groups/:id/members/all/:user_id` would include them, so `teams = ["acme/release"]`
//! would admit everyone in `acme`), nor do members of groups invited to it.

use http::Method;
use serde_json::Value;

use super::client::{GitLab, encode};
use crate::forge::retry::ForgeError;
use crate::release::Permission;

impl GitLab {
    /// [Get a member of a project, including inherited and invited members](https://docs.gitlab.com/api/members/#get-a-member-of-a-group-or-project-including-inherited-and-invited-members):
    /// the access level mapped to our permission scale; not a member → `None`.
    pub async fn permission(&self, project: u64, user_id: u64) -> Result<Permission, ForgeError> {
        let uri = format!("/projects/{project}/members/all/{user_id}");
        match self.call(Method::GET, &uri, None, &[]).await {
            Ok(a) => Ok(member_permission(&a.json()?)),
            Err(ForgeError::NotFound) => Ok(Permission::None),
            Err(e) => Err(e),
        }
    }

    /// True for an active member (above guest) of the group at `group_path` or of one of its
    /// descendant groups, never through a parent group:
    /// [Get a member of a group](https://docs.gitlab.com/api/members/#get-a-member-of-a-group-or-project)
    /// (direct members only) on the group, then on each of its
    /// [descendant groups](https://docs.gitlab.com/api/groups/#list-descendant-groups).
    pub async fn group_member(&self, group_path: &str, user_id: u64) -> Result<bool, ForgeError> {
        let group = encode(group_path);
        if self.direct_member(&group, user_id).await? {
            return Ok(true);
        }
        let uri = format!("/groups/{group}/descendant_groups?per_page=100");
        for g in self.list(&uri).await? {
            let Some(id) = g.get("id").and_then(Value::as_u64) else {
                continue;
            };
            if self.direct_member(&id.to_string(), user_id).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A direct member of the group (path already encoded, or id).
    async fn direct_member(&self, group: &str, user_id: u64) -> Result<bool, ForgeError> {
        let uri = format!("/groups/{group}/members/{user_id}");
        match self.call(Method::GET, &uri, None, &[]).await {
            Ok(a) => Ok(member_permission(&a.json()?) > Permission::None),
            Err(ForgeError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A member answer's `access_level` (and `state`: a blocked or awaiting member has no rights).
fn member_permission(member: &Value) -> Permission {
    let active = member
        .get("state")
        .and_then(Value::as_str)
        .is_none_or(|s| s == "active");
    let level = member
        .get("access_level")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if !active {
        return Permission::None;
    }
    Permission::from_gitlab_access_level(u32::try_from(level).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn access_levels_and_member_states() {
        let m = |level: u64, state: &str| json!({ "access_level": level, "state": state });
        assert_eq!(member_permission(&m(30, "active")), Permission::Write);
        assert_eq!(member_permission(&m(40, "active")), Permission::Maintain);
        assert_eq!(member_permission(&m(50, "active")), Permission::Admin);
        assert_eq!(member_permission(&m(20, "active")), Permission::Read);
        assert_eq!(member_permission(&m(10, "active")), Permission::None);
        assert_eq!(member_permission(&m(5, "active")), Permission::None);
        assert_eq!(member_permission(&m(50, "blocked")), Permission::None);
        assert_eq!(
            member_permission(&json!({ "access_level": 40 })),
            Permission::Maintain
        );
    }
}
