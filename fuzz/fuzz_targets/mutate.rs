//! Structure-aware mutations of a JSON payload, shared by the `*_event_structured` targets:
//! the fuzzer picks paths through the document (a byte per step) and what to do there.

use arbitrary::Arbitrary;
use serde_json::{Map, Value, json};

#[derive(Debug, Arbitrary)]
pub struct Input {
    pub fixture: u8,
    pub mutations: Vec<Mutation>,
    /// Where the unknown key goes (a path of choices, like a mutation's).
    pub extra_at: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
pub struct Mutation {
    /// Each byte picks a key (objects) or an element (arrays) one level down.
    pub path: Vec<u8>,
    pub op: Op,
}

#[derive(Debug, Arbitrary)]
pub enum Op {
    Delete,
    Replace(Leaf),
    /// A string that GitHub might send: an action, a SHA-like, a date-like.
    Action(u8),
    Nest(u8),
}

#[derive(Debug, Arbitrary)]
pub enum Leaf {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    EmptyArray,
    EmptyObject,
}

/// Strings the forges send where it matters: actions, states, SHAs, dates.
pub const ACTIONS: &[&str] = &[
    "open",
    "reopen",
    "update",
    "close",
    "merge",
    "running",
    "pending",
    "failed",
    "canceled",
    "skipped",
    "opened",
    "reopened",
    "synchronize",
    "ready_for_review",
    "closed",
    "created",
    "edited",
    "deleted",
    "requested",
    "in_progress",
    "completed",
    "rerequested",
    "suspend",
    "success",
    "failure",
    "cancelled",
    "6dcb09b5b57875f334f61aebed695e2e4193db5e",
    "6DCB09B5B57875F334F61AEBED695E2E4193DB5E",
    "2026-11-20T19:30:00Z",
    "2026-11-20T19:30:00+14:00",
    "9999-12-31T23:59:59.999999999Z",
    "",
];

fn leaf(l: &Leaf) -> Value {
    match l {
        Leaf::Null => Value::Null,
        Leaf::Bool(b) => json!(b),
        Leaf::Int(i) => json!(i),
        Leaf::Uint(u) => json!(u),
        Leaf::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Leaf::Str(s) => json!(s),
        Leaf::EmptyArray => json!([]),
        Leaf::EmptyObject => json!({}),
    }
}

/// One step down a JSON document.
enum Step {
    Key(String),
    Index(usize),
}

/// The steps `path` picks through `root`, stopping at a leaf (or, with `containers_only`,
/// before a step would land on one).
fn steps(root: &Value, path: &[u8], containers_only: bool) -> Vec<Step> {
    let mut out = Vec::new();
    let mut v = root;
    for &pick in path {
        let (step, next) = match v {
            Value::Object(map) if !map.is_empty() => {
                let (k, next) = map.iter().nth(usize::from(pick) % map.len()).expect("key");
                (Step::Key(k.clone()), next)
            }
            Value::Array(list) if !list.is_empty() => {
                let i = usize::from(pick) % list.len();
                (Step::Index(i), &list[i])
            }
            _ => break,
        };
        if containers_only && !next.is_object() && !next.is_array() {
            break;
        }
        out.push(step);
        v = next;
    }
    out
}

fn follow<'a>(mut v: &'a mut Value, steps: &[Step]) -> &'a mut Value {
    for step in steps {
        v = match (v, step) {
            (Value::Object(map), Step::Key(k)) => map.get_mut(k).expect("key"),
            (Value::Array(list), Step::Index(i)) => &mut list[*i],
            _ => unreachable!("steps follow the document"),
        };
    }
    v
}

pub fn apply(root: &mut Value, path: &[u8], op: &Op) {
    let steps = steps(root, path, false);
    let new = match op {
        Op::Delete => None,
        Op::Replace(l) => Some(leaf(l)),
        Op::Action(n) => Some(json!(ACTIONS[usize::from(*n) % ACTIONS.len()])),
        Op::Nest(depth) => {
            let mut v = json!("x");
            for _ in 0..(depth % 64) {
                v = json!([v]);
            }
            Some(v)
        }
    };
    let Some((last, parents)) = steps.split_last() else {
        if let Some(new) = new {
            *root = new;
        }
        return;
    };
    match (follow(root, parents), last, new) {
        (Value::Object(map), Step::Key(k), None) => {
            map.remove(k);
        }
        (Value::Object(map), Step::Key(k), Some(new)) => {
            map.insert(k.clone(), new);
        }
        (Value::Array(list), Step::Index(i), None) => {
            list.remove(*i);
        }
        (Value::Array(list), Step::Index(i), Some(new)) => list[*i] = new,
        _ => unreachable!("steps follow the document"),
    }
}

/// Adds `zz_not_a_forge_field` to the object found along `path`; false when there is none.
pub fn add_unknown_key(root: &mut Value, path: &[u8]) -> bool {
    let steps = steps(root, path, true);
    match follow(root, &steps) {
        Value::Object(map) => {
            let map: &mut Map<String, Value> = map;
            map.insert(
                "zz_not_a_forge_field".into(),
                json!({ "nested": [1, "two"] }),
            );
            true
        }
        _ => false,
    }
}
