//! Scripted trouble for the fake forges: failures that are answered instead of the call (not
//! carried out), and calls carried out whose answer is lost (a 502 from a proxy, a connection
//! reset after the forge acted). The same machinery for the fake GitHub and the fake GitLab.

use std::collections::VecDeque;

use serde_json::Value;
use wiremock::ResponseTemplate;

/// A scripted failure: the next call with this method, path prefix and (when set) a JSON body
/// containing `body_has` gets `answer`, and is not carried out.
#[derive(Debug)]
struct Fault {
    method: String,
    path_prefix: String,
    body_has: Option<String>,
    answer: ResponseTemplate,
}

/// What is to go wrong next, in order.
#[derive(Debug, Default)]
pub struct Script {
    faults: VecDeque<Fault>,
    /// Calls to carry out whose answer is lost: (method, path prefix).
    lost_answers: VecDeque<(String, String)>,
}

impl Script {
    /// The next matching call gets `answer` instead of being carried out.
    pub fn fail_next(
        &mut self,
        method: &str,
        path_prefix: &str,
        body_has: Option<&str>,
        answer: ResponseTemplate,
    ) {
        self.faults.push_back(Fault {
            method: method.to_owned(),
            path_prefix: path_prefix.to_owned(),
            body_has: body_has.map(str::to_owned),
            answer,
        });
    }

    /// The next matching call is carried out, but its answer is lost.
    pub fn lose_next_answer(&mut self, method: &str, path_prefix: &str) {
        self.lost_answers
            .push_back((method.to_owned(), path_prefix.to_owned()));
    }

    /// The scripted failure for this call, if any (used up): answer it and do nothing else.
    pub fn fault(&mut self, method: &str, path: &str, body: &Value) -> Option<ResponseTemplate> {
        let text = body.to_string();
        let i = self.faults.iter().position(|f| {
            f.method == method
                && path.starts_with(f.path_prefix.as_str())
                && f.body_has
                    .as_ref()
                    .is_none_or(|b| text.contains(b.as_str()))
        })?;
        self.faults.remove(i).map(|f| f.answer)
    }

    /// Whether this call, once carried out, is to lose its answer (used up).
    pub fn lose_answer(&mut self, method: &str, path: &str) -> bool {
        let i = self
            .lost_answers
            .iter()
            .position(|(m, p)| m == method && path.starts_with(p.as_str()));
        i.and_then(|i| self.lost_answers.remove(i)).is_some()
    }
}
