//! The two text formats Prometheus reads, chosen by the scraper's `Accept` header:
//! OpenMetrics 1.0 (what prometheus-client writes) and the Prometheus text format 0.0.4, in
//! which a counter's `# TYPE` names its `_total` samples and there is no `# EOF` or `# UNIT`.

use prometheus_client::registry::Registry;

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
    /// `text/plain; version=0.0.4`, for any scraper that does not ask for OpenMetrics.
    Text004,
}

impl Format {
    /// The format an `Accept` header prefers: OpenMetrics when it names
    /// `application/openmetrics-text` with a quality at least that of `text/plain`, else 0.0.4.
    pub fn negotiate(accept: Option<&str>) -> Self {
        let (mut open_metrics, mut text) = (0.0_f32, 0.0_f32);
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => open_metrics = open_metrics.max(q),
                "text/plain" => text = text.max(q),
                _ => {}
            }
        }
        if open_metrics > 0.0 && open_metrics >= text {
            Self::OpenMetrics
        } else {
            Self::Text004
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Self::Text004 => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

pub(super) fn render(registry: &Registry, format: Format) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    match format {
        Format::OpenMetrics => {
            let _ = prometheus_client::encoding::text::encode(&mut out, registry);
            out
        }
        Format::Text004 => {
            let _ = prometheus_client::encoding::text::encode_registry(&mut out, registry);
            to_text_004(&out)
        }
    }
}

/// OpenMetrics text (without `# EOF`) as Prometheus text 0.0.4: a counter family `x` becomes
/// `x_total` in its `# HELP` and `# TYPE` lines (its samples are `x_total` already), `unknown`
/// becomes `untyped`, `# UNIT` lines go.
fn to_text_004(open_metrics: &str) -> String {
    let counters: Vec<&str> = open_metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open_metrics.len() + counters.len() * 12);
    for line in open_metrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            if counters.contains(&name) {
                Some(format!("{prefix}{name}_total {tail}"))
            } else if *prefix == "# TYPE " && tail == "unknown" {
                Some(format!("{prefix}{name} untyped"))
            } else {
                None
            }
        });
        out.push_str(rewritten.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// Segments after which the next `n` are parameters, with the names shown for them.
const PARAMETERS: &[(&str, &[&str])] = &[
    ("repos", &["{owner}", "{repo}"]),
    ("users", &["{user}"]),
    ("orgs", &["{org}"]),
    ("teams", &["{team}"]),
    ("memberships", &["{user}"]),
    ("collaborators", &["{user}"]),
    ("workflows", &["{workflow}"]),
    ("environments", &["{environment}"]),
    ("commits", &["{ref}"]),
    ("statuses", &["{sha}"]),
    ("projects", &["{project}"]),
    ("groups", &["{group}"]),
    ("files", &["{path}"]),
];

/// `method` and the route template of `path`, for the metrics' `operation` label: the query is
/// dropped and every owner, repository, user, number, SHA and file path replaced by a
/// placeholder (`GET /repos/{owner}/{repo}/issues/{id}/comments`), so the label's values stay
/// few whatever the traffic.
pub fn route_template(method: &str, path: &str) -> String {
    let path = path.split('?').next().unwrap_or("");
    let mut out = String::from(method);
    out.push(' ');
    let mut pending: &[&str] = &[];
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let mut any = false;
    while let Some(segment) = segments.next() {
        out.push('/');
        any = true;
        if let Some((first, rest)) = pending.split_first() {
            out.push_str(first);
            pending = rest;
            continue;
        }
        if segment == "contents" {
            // The rest is the file's path.
            out.push_str("contents/{path}");
            if segments.next().is_none() {
                out.truncate(out.len() - "/{path}".len());
            }
            break;
        }
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str("{id}");
        } else if segment.len() >= 7 && segment.bytes().all(|b| b.is_ascii_hexdigit()) {
            out.push_str("{sha}");
        } else if segment.contains('%') || segment.contains('@') {
            out.push_str("{name}");
        } else {
            out.push_str(segment);
            if let Some((_, names)) = PARAMETERS.iter().find(|(s, _)| *s == segment) {
                pending = names;
            }
        }
    }
    if !any {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_hide_every_parameter() {
        for (path, want) in [
            (
                "/repos/acme/app/issues/12/comments?per_page=100&since=x",
                "GET /repos/{owner}/{repo}/issues/{id}/comments",
            ),
            (
                "/repos/acme/app/contents/.github/greenlight.toml",
                "GET /repos/{owner}/{repo}/contents/{path}",
            ),
            (
                "/repos/a/b/collaborators/bob/permission",
                "GET /repos/{owner}/{repo}/collaborators/{user}/permission",
            ),
            ("/users/greenlight%5Bbot%5D", "GET /users/{user}"),
            (
                "/projects/7/merge_requests/3/notes",
                "GET /projects/{project}/merge_requests/{id}/notes",
            ),
            (
                "/projects/7/statuses/0123456789abcdef0123456789abcdef01234567",
                "GET /projects/{project}/statuses/{sha}",
            ),
            ("/app", "GET /app"),
        ] {
            assert_eq!(route_template("GET", path), want, "{path}");
        }
    }

    #[test]
    fn accept_picks_the_format() {
        for (accept, want) in [
            (None, Format::Text004),
            (Some("*/*"), Format::Text004),
            (Some("text/plain;version=0.0.4"), Format::Text004),
            (
                Some(
                    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                ),
                Format::OpenMetrics,
            ),
            (
                Some("application/openmetrics-text;q=0.2, text/plain;q=0.9"),
                Format::Text004,
            ),
            (Some("application/openmetrics-text;q=0"), Format::Text004),
        ] {
            assert_eq!(Format::negotiate(accept), want, "{accept:?}");
        }
    }
}
