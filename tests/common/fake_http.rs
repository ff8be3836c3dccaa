//! What the two fake forges share: the record of every call, the order in which a call meets
//! the scripted failures, the injected faults and its answer, the common answers, and the
//! arithmetic of paged lists (each forge then writes its own paging headers).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use wiremock::{Request, ResponseTemplate};

use super::faults::Faults;
use super::scripted::Script;

/// A call a fake received, in order.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// GitHub: the full path. GitLab: below `/api/v4/projects/15` when it is a project call,
    /// the full path otherwise.
    pub path: String,
    /// The query string as sent (`per_page=100&cursor=…`), empty when there is none.
    pub query: String,
    pub body: Value,
    /// When the fake received it (the command-latency benchmark measures up to here).
    pub at: std::time::Instant,
    /// The `Host` the client addressed: tells apart clients given different API URLs for
    /// the one fake (two replicas, say).
    pub host: String,
    /// Every `User-Agent` value the request carried, in order (a client that adds its own to
    /// a library's default sends two).
    pub user_agents: Vec<String>,
}

/// A fake forge's state, as the shared call handling needs it.
pub trait Recording {
    fn calls_mut(&mut self) -> &mut Vec<Call>;
    fn script_mut(&mut self) -> &mut Script;
    fn injector(&self) -> Option<Arc<Faults>>;
}

/// Records the call, then answers it: a scripted failure first (not carried out), else the
/// injected fault plan around `answer`, which carries the call out (its answer replaced by a
/// 502 when the script says it is lost). `guard` may refuse the call after it is recorded
/// (GitLab's token check).
pub fn handle<M: Recording>(
    m: &mut M,
    req: &Request,
    method: &str,
    path: &str,
    body: Value,
    guard: impl FnOnce(&M) -> Option<ResponseTemplate>,
    answer: impl FnOnce(&mut M, Value) -> ResponseTemplate,
) -> ResponseTemplate {
    m.calls_mut().push(Call {
        method: method.to_owned(),
        path: path.to_owned(),
        query: req.url.query().unwrap_or_default().to_owned(),
        body: body.clone(),
        at: std::time::Instant::now(),
        host: req
            .headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        user_agents: req
            .headers
            .get_all("user-agent")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect(),
    });
    if let Some(refused) = guard(m) {
        return refused;
    }
    if let Some(answer) = m.script_mut().fault(method, path, &body) {
        return answer;
    }
    let injector = m.injector();
    let carry_out = || {
        let lost = m.script_mut().lose_answer(method, path);
        let result = answer(m, body);
        if lost {
            ResponseTemplate::new(502)
        } else {
            result
        }
    };
    match injector {
        Some(faults) => faults.answer(method, path, carry_out),
        None => carry_out(),
    }
}

pub fn ok(v: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(v)
}

pub fn created(v: Value) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(v)
}

/// The query string as a map.
pub fn query(req: &Request) -> HashMap<String, String> {
    req.url.query_pairs().into_owned().collect()
}

/// One page of a list, as both forges' REST APIs cut it: `per_page` from the query (the
/// forge's default when absent, at most 100) and `page` from 1.
pub struct Page {
    pub page: usize,
    pub per_page: usize,
    /// How many pages the whole list has (at least one).
    pub pages: usize,
    pub total: usize,
    pub items: Vec<Value>,
}

impl Page {
    pub fn of(req: &Request, list: Vec<Value>, default_per_page: usize) -> Self {
        let q = query(req);
        let per_page = q
            .get("per_page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default_per_page)
            .clamp(1, 100);
        let page = q
            .get("page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let total = list.len();
        let pages = total.div_ceil(per_page).max(1);
        let items = list
            .into_iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .collect();
        Self {
            page,
            per_page,
            pages,
            total,
            items,
        }
    }

    pub fn has_next(&self) -> bool {
        self.page < self.pages
    }
}

/// The request's URL asking for page `n` instead (the other query parameters kept).
pub fn page_url(req: &Request, n: usize) -> String {
    let mut url = req.url.clone();
    let pairs: Vec<(String, String)> = req
        .url
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != "page")
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair("page", &n.to_string());
    url.to_string()
}
