//! The export's `index.html`: the page a parent opens first, offline, on a
//! phone or a desk. In the family's language (with a word in the other one
//! at the end), each child by name with their records as tables per kind,
//! the statement with money as the family reads it ("39.00 元"), every time
//! in the family's zone, the receipts, and how to check it all. The
//! machine-readable files beside it are the record; this page only reads
//! them out, and shows at most `ROWS_PER_TABLE` rows of a kind (the files
//! hold them all), so that it stays small however much there is.

use baobao_domain::Locale;
use baobao_domain::calendar::Calendar;
use baobao_domain::money::{Currency, Money};
use jiff::Timestamp;

use crate::i18n::T;
use crate::views::StatementEntryView;

/// Records of one kind shown in the page; the files hold every one.
pub const ROWS_PER_TABLE: usize = 200;
/// Columns of a record table at most (the record's first keys).
const COLUMNS_MAX: usize = 12;

pub struct ChildSection {
    pub id: String,
    pub name: String,
    pub birth_date: String,
    pub consent_at: Timestamp,
}

/// One (child, service, kind) of records: how many, and the first ones.
pub struct RecordGroup {
    pub child_id: String,
    pub service: String,
    pub kind: String,
    pub count: u64,
    pub shown: Vec<(Timestamp, serde_json::Value)>,
}

pub struct ReceiptLine {
    pub path: String,
    pub number: String,
    pub kind: String,
}

pub struct IndexModel<'a> {
    pub locale: Locale,
    pub calendar: &'a Calendar,
    pub export_id: &'a str,
    pub created_at: Timestamp,
    pub children: &'a [ChildSection],
    pub groups: &'a [RecordGroup],
    pub statement: &'a [StatementEntryView],
    pub receipts: &'a [ReceiptLine],
    /// Every file so far, as the manifest lists it: path, bytes, SHA-256.
    pub files: &'a [(&'a str, u64, &'a str)],
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn local(calendar: &Calendar, at: Timestamp) -> String {
    calendar.zoned(at).strftime("%Y-%m-%d %H:%M").to_string()
}

/// A record's value as a cell: text as it is, anything else as compact JSON.
fn cell(value: Option<&serde_json::Value>) -> String {
    match value {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(text)) => escape(text),
        Some(other) => escape(&other.to_string()),
    }
}

const STYLE: &str = "body{font:16px/1.5 system-ui,-apple-system,\"PingFang SC\",\"Noto Sans CJK SC\",sans-serif;\
color:#1b1b1f;margin:0}main{max-width:60rem;margin:0 auto;padding:1rem}h1{font-size:1.5rem}h2{font-size:1.25rem;\
margin-top:2rem;border-bottom:1px solid #c9c9d3}h3{font-size:1.05rem}table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #c9c9d3;vertical-align:top;overflow-wrap:anywhere}\
th{background:#f4f5f8}.scroll{overflow-x:auto}.scroll:focus{outline:3px solid #f2a900}.muted{color:#4a4a55}\
a{color:#0b57d0}code{overflow-wrap:anywhere}";

/// The page, in the family's language.
pub fn render(model: &IndexModel<'_>) -> String {
    let t = T::new(model.locale);
    let calendar = model.calendar;
    let mut html = format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
<style>{STYLE}</style></head><body><main>\n<h1>{title}</h1>\n<p>{made}</p>\n<p>{about}</p>\n",
        lang = t.tag(),
        title = escape(&t.get("export-index-title")),
        made = escape(&t.args(
            "export-index-made",
            &[("at", local(calendar, model.created_at)), ("id", model.export_id.to_owned())]
        )),
        about = escape(&t.get("export-index-about")),
    );
    for child in model.children {
        html.push_str(&child_section(&t, calendar, child, model.groups));
    }
    html.push_str(&statement_section(&t, calendar, model.statement));
    html.push_str(&receipts_section(&t, model.receipts));
    html.push_str(&files_section(&t, model.files));
    // A word for a reader of the other language.
    let other = T::new(t.other());
    html.push_str(&format!(
        "<section lang=\"{}\" aria-labelledby=\"other-language\"><h2 id=\"other-language\">{}</h2><p>{}</p></section>\n",
        other.tag(),
        escape(&other.get("export-index-title")),
        escape(&other.get("export-index-about")),
    ));
    html.push_str("</main></body></html>\n");
    html
}

fn child_section(t: &T, calendar: &Calendar, child: &ChildSection, groups: &[RecordGroup]) -> String {
    // A child whose profile was minimised keeps only their id.
    let name = if child.name.is_empty() { child.id.clone() } else { child.name.clone() };
    let mut html = format!(
        "<section aria-labelledby=\"{id}\">\n<h2 id=\"{id}\">{name}</h2>\n<p>{facts}</p>\n",
        id = escape(&child.id),
        name = escape(&name),
        facts = escape(&t.args(
            "export-index-child",
            &[("born", child.birth_date.clone()), ("consent", local(calendar, child.consent_at))]
        )),
    );
    let mine: Vec<&RecordGroup> = groups.iter().filter(|g| g.child_id == child.id).collect();
    if mine.is_empty() {
        html.push_str(&format!("<p>{}</p>\n", escape(&t.get("export-index-no-records"))));
    }
    for group in mine {
        html.push_str(&group_table(t, calendar, group));
    }
    html.push_str("</section>\n");
    html
}

fn group_table(t: &T, calendar: &Calendar, group: &RecordGroup) -> String {
    let base = format!("children/{}/{}/{}", group.child_id, group.service, group.kind);
    let caption = t.args("export-index-kind", &[("kind", group.kind.clone()), ("service", group.service.clone())]);
    // The columns: the keys of the records shown, in first-seen order.
    let mut columns: Vec<String> = Vec::new();
    for (_, body) in &group.shown {
        if let Some(object) = body.as_object() {
            for key in object.keys() {
                if columns.len() < COLUMNS_MAX && !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
    }
    let mut html = format!(
        "<h3>{caption}</h3>\n<p>{count} <a href=\"{base}.csv\">CSV</a> · <a href=\"{base}.jsonl\">JSON Lines</a></p>\n",
        caption = escape(&caption),
        count = escape(&t.arg("export-index-count", "count", group.count)),
        base = escape(&base),
    );
    html.push_str(&format!(
        "<div class=\"scroll\" role=\"region\" tabindex=\"0\" aria-label=\"{caption}\"><table><caption>{caption}</caption>\
<thead><tr><th scope=\"col\">{at}</th>",
        caption = escape(&caption),
        at = escape(&t.get("export-index-recorded-at")),
    ));
    let value_column = columns.is_empty();
    if value_column {
        html.push_str(&format!("<th scope=\"col\">{}</th>", escape(&t.get("export-index-value"))));
    }
    for column in &columns {
        html.push_str(&format!("<th scope=\"col\">{}</th>", escape(column)));
    }
    html.push_str("</tr></thead><tbody>\n");
    for (at, body) in &group.shown {
        html.push_str(&format!("<tr><td>{}</td>", local(calendar, *at)));
        if value_column {
            html.push_str(&format!("<td>{}</td>", cell(Some(body))));
        }
        for column in &columns {
            html.push_str(&format!("<td>{}</td>", cell(body.get(column))));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody></table></div>\n");
    if group.count > group.shown.len() as u64 {
        html.push_str(&format!(
            "<p class=\"muted\">{}</p>\n",
            escape(&t.args(
                "export-index-more",
                &[("shown", group.shown.len().to_string()), ("count", group.count.to_string())]
            ))
        ));
    }
    html
}

fn statement_section(t: &T, calendar: &Calendar, statement: &[StatementEntryView]) -> String {
    let heads =
        ["export-index-date", "export-index-entry", "export-index-amount", "export-index-period", "export-index-note"];
    let mut html = format!(
        "<section aria-labelledby=\"statement\">\n<h2 id=\"statement\">{}</h2>\n<p><a href=\"statement.csv\">CSV</a></p>\n",
        escape(&t.get("export-index-statement"))
    );
    if statement.is_empty() {
        html.push_str(&format!("<p>{}</p></section>\n", escape(&t.get("export-index-no-statement"))));
        return html;
    }
    html.push_str(&format!(
        "<div class=\"scroll\" role=\"region\" tabindex=\"0\" aria-label=\"{}\"><table><thead><tr>",
        escape(&t.get("export-index-statement-table"))
    ));
    for head in heads {
        html.push_str(&format!("<th scope=\"col\">{}</th>", escape(&t.get(head))));
    }
    html.push_str("</tr></thead><tbody>\n");
    for entry in statement {
        let amount = Currency::parse(&entry.amount.currency)
            .map(|currency| Money { amount_minor: entry.amount.amount_minor, currency }.display_in(t.locale))
            .unwrap_or_else(|_| format!("{} {}", entry.amount.amount_minor, entry.amount.currency));
        let period = match (entry.period_start, entry.period_end) {
            (Some(start), Some(end)) => format!("{} – {}", local(calendar, start), local(calendar, end)),
            _ => String::new(),
        };
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            local(calendar, entry.created_at),
            escape(&t.get(&format!("kind-{}", entry.kind))),
            escape(&amount),
            escape(&period),
            escape(&t.ledger_note(&entry.note)),
        ));
    }
    html.push_str("</tbody></table></div>\n</section>\n");
    html
}

fn receipts_section(t: &T, receipts: &[ReceiptLine]) -> String {
    let mut html = format!(
        "<section aria-labelledby=\"receipts\">\n<h2 id=\"receipts\">{}</h2>\n<p>{}</p>\n<ul>\n",
        escape(&t.get("export-index-receipts")),
        escape(&t.get("export-index-receipts-about")),
    );
    for receipt in receipts {
        html.push_str(&format!(
            "<li><a href=\"{}\">{}</a> · {}</li>\n",
            escape(&receipt.path),
            escape(&receipt.number),
            escape(&t.get(&format!("receipt-kind-{}", receipt.kind))),
        ));
    }
    html.push_str("</ul>\n</section>\n");
    html
}

fn files_section(t: &T, files: &[(&str, u64, &str)]) -> String {
    let all_files = escape(&t.get("export-index-files"));
    let mut html = format!(
        "<section aria-labelledby=\"checking\">\n<h2 id=\"checking\">{}</h2>\n<p>{}</p>\n<details><summary>{all_files}</summary>\n\
<div class=\"scroll\" role=\"region\" tabindex=\"0\" aria-label=\"{all_files}\"><table><thead><tr>\
<th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">SHA-256</th></tr></thead><tbody>\n",
        escape(&t.get("export-index-checking")),
        escape(&t.get("export-index-checking-about")),
        escape(&t.get("export-index-file")),
        escape(&t.get("export-index-bytes")),
    );
    for (path, size, sha256) in files {
        let path = escape(path);
        html.push_str(&format!(
            "<tr><td><a href=\"{path}\">{path}</a></td><td>{size}</td><td><code>{sha256}</code></td></tr>\n"
        ));
    }
    html.push_str("</tbody></table></div></details>\n</section>\n");
    html
}
