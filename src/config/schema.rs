//! The policy file's JSON Schema, generated from the types that read it
//! ([`crate::config::policy`]). Checked in at `schema/greenlight.schema.json` (a test keeps
//! it equal to this output) and printed by `greenlight schema`.

use crate::config::policy::Policy;

/// Where the checked-in copy lives, relative to the repository root.
pub const PATH: &str = "schema/greenlight.schema.json";

/// The schema as a JSON value.
pub fn policy_schema() -> schemars::Schema {
    schemars::schema_for!(Policy)
}

/// The schema as pretty-printed JSON with a final newline: the checked-in file's content.
pub fn policy_schema_json() -> String {
    let mut text =
        serde_json::to_string_pretty(&policy_schema()).expect("a JSON Schema always serializes");
    text.push('\n');
    text
}
