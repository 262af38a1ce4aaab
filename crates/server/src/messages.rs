//! The message catalogue for API errors: every error code has its text in
//! both locales here, and nowhere else. A test checks that every code the
//! server can produce has both.

use baobao_domain::Locale;

/// `(code, en, zh-CN)`. `{…}` placeholders are filled from the error's details.
pub const CATALOGUE: &[(&str, &str, &str)] = &[
    (
        "invalid_json",
        "The request body is not valid JSON for this endpoint: {reason}.",
        "请求体不是此接口可接受的 JSON：{reason}。",
    ),
    ("invalid_field", "The field {field} is not valid: {reason}", "字段 {field} 无效：{reason}"),
    ("invalid_query", "The query parameter {field} is not valid: {reason}", "查询参数 {field} 无效：{reason}"),
    (
        "gateway_not_simulated",
        "The payment gateway can be told to fail only when the server runs with --gateway simulated.",
        "只有在服务器以 --gateway simulated 运行时，才能设置支付网关失败。",
    ),
    (
        "idempotent_request_done",
        "This request was already carried out with this Idempotency-Key. Its answer held a secret that is shown only once and is not kept; sign in again, or create a new one, with a new key.",
        "使用此 Idempotency-Key 的请求已经完成。其响应包含只显示一次、不予保存的机密信息；如需要，请使用新的 Idempotency-Key 重新登录或重新创建。",
    ),
    (
        "idempotent_answer_lost",
        "This request was carried out, but its answer was lost when the server restarted. Nothing was done twice: read the result where you would see it (your subscriptions, your children, your receipts, your complaints).",
        "此请求已经完成，但服务器重启时丢失了其响应。没有任何操作被重复执行：请在相应位置查看结果（您的订阅、孩子、收据或投诉）。",
    ),
    (
        "too_many_requests",
        "Too many requests of this kind from your address; retry in {retry_after_seconds} seconds.",
        "您所在网络地址的此类请求过多，请 {retry_after_seconds} 秒后重试。",
    ),
    (
        "json_not_object",
        "The request body must be a JSON object ({…}), not an array or a single value.",
        "请求体必须是 JSON 对象（{…}），不能是数组或单个值。",
    ),
    ("invalid_id", "{id} is not a valid identifier here.", "{id} 不是有效的标识符。"),
    ("invalid_policy", "The policy field {field} is not valid: {reason}", "条款字段 {field} 无效：{reason}"),
    ("payload_too_large", "The request body is too large.", "请求体过大。"),
    ("unsupported_media_type", "Send the body as application/json.", "请以 application/json 格式发送请求体。"),
    (
        "unauthenticated",
        "Sign in first: this needs a valid session or API key.",
        "请先登录：此操作需要有效的会话或 API 密钥。",
    ),
    ("invalid_credentials", "The email or password is not correct.", "邮箱或密码不正确。"),
    (
        "too_many_attempts",
        "Too many failed sign-ins for this account; try again in {minutes} minutes.",
        "该账户登录失败次数过多，请 {minutes} 分钟后再试。",
    ),
    ("forbidden", "Your role may not do this.", "您的角色无权执行此操作。"),
    ("not_found", "There is no such {resource}.", "不存在该{resource}。"),
    ("route_not_found", "There is no such endpoint.", "不存在该接口。"),
    ("method_not_allowed", "This endpoint does not accept that method.", "此接口不支持该请求方法。"),
    ("email_taken", "An account with this email exists already.", "该邮箱已注册。"),
    (
        "policy_hash_mismatch",
        "The terms you accepted are not the plan's current terms; review the current terms (SHA-256 {current}) and accept them.",
        "您接受的条款不是该套餐的当前条款；请查看当前条款（SHA-256 {current}）后再接受。",
    ),
    (
        "already_subscribed",
        "This family already has a running subscription to this plan.",
        "该家庭已有此套餐的有效订阅。",
    ),
    (
        "payment_failed",
        "The payment did not go through; nothing was charged or created.",
        "付款未成功；未产生任何费用或订阅。",
    ),
    (
        "not_cancellable",
        "This subscription cannot be cancelled in its current status ({status}).",
        "该订阅当前状态（{status}）下无法取消。",
    ),
    (
        "cancellation_pending",
        "A cancellation is already scheduled for this subscription (effective {effective_at}); withdraw it first to choose another option.",
        "该订阅已安排取消（生效时间 {effective_at}）；如需更改，请先撤回。",
    ),
    (
        "quote_expired",
        "The quote {quote_id} is no longer valid; get a new quote.",
        "报价 {quote_id} 已失效，请重新获取报价。",
    ),
    ("quote_mismatch", "The quote {quote_id} belongs to another subscription.", "报价 {quote_id} 属于其他订阅。"),
    (
        "option_not_available",
        "The option {option} is not available now; the quote lists the options you have.",
        "当前无法选择 {option}；可选项见报价。",
    ),
    ("nothing_to_resume", "There is no scheduled cancellation to withdraw.", "没有可撤回的取消申请。"),
    (
        "received_at_out_of_range",
        "received_at must lie within the subscription's current period and not in the future.",
        "received_at 必须在订阅当前周期内且不能晚于现在。",
    ),
    (
        "clock_not_simulated",
        "The clock can be set only when the server runs with --clock simulated.",
        "只有以 --clock simulated 运行时才能设置时钟。",
    ),
    ("clock_backwards", "The simulated clock only moves forward (now {now}).", "模拟时钟只能向前调整（当前 {now}）。"),
    (
        "idempotency_key_reused",
        "This Idempotency-Key was used with another request body.",
        "此 Idempotency-Key 已用于另一个不同的请求。",
    ),
    (
        "idempotency_in_progress",
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        "使用此 Idempotency-Key 的请求仍在处理中，请稍后重试。",
    ),
    (
        "invalid_idempotency_key",
        "The Idempotency-Key header must be 1 to 255 visible ASCII characters.",
        "Idempotency-Key 头必须是 1 到 255 个可见 ASCII 字符。",
    ),
    (
        "conflict",
        "This conflicts with what is stored already; reload and try again.",
        "与已保存的数据冲突；请刷新后重试。",
    ),
    ("not_subscribed", "This family has no running subscription to {service}.", "该家庭没有有效的 {service} 订阅。"),
    (
        "data_deleted",
        "This data was deleted; its key was destroyed and it cannot be read by anyone.",
        "该数据已删除，其密钥已销毁，任何人都无法读取。",
    ),
    ("deletion_pending", "A deletion of this data is already under way.", "该数据的删除已在进行中。"),
    (
        "child_removed",
        "This child was removed already; the deletion certificate is among your receipts.",
        "该孩子已被移除，删除证明在您的回执中。",
    ),
    ("export_not_ready", "This export is not ready yet (status {status}).", "该导出尚未完成（状态：{status}）。"),
    (
        "export_gone",
        "This export no longer exists: it expired, or a deletion covered its data, and its file and key were destroyed. Prepare a new export if you still need one.",
        "该导出已不存在：它已过期，或其数据已被删除，文件和密钥均已销毁。如仍需要，请重新导出。",
    ),
    ("busy", "The server is busy; nothing was changed. Retry shortly.", "服务器繁忙，未做任何更改，请稍后重试。"),
    (
        "storage_full",
        "The server's storage is full; nothing was changed. Retry later.",
        "服务器存储空间已满，未做任何更改，请稍后重试。",
    ),
    (
        "database_unavailable",
        "The server cannot reach its database right now; nothing was changed. Retry shortly.",
        "服务器暂时无法连接数据库，未做任何更改，请稍后重试。",
    ),
    (
        "internal",
        "Something went wrong on our side (request {request_id}); nothing you sent was lost.",
        "服务器出现问题（请求编号 {request_id}）；您提交的内容没有丢失。",
    ),
    (
        "verification_required",
        "Verify the guardian first: enter the one-time code sent to them (or, as a supervisor, give a written reason to override).",
        "请先验证监护人身份：输入发送给监护人的一次性验证码（主管也可填写书面理由跳过验证）。",
    ),
    (
        "verification_failed",
        "That code is not the one sent to the guardian; {attempts_left} tries left.",
        "验证码与发送给监护人的不一致；还可尝试 {attempts_left} 次。",
    ),
    (
        "verification_expired",
        "There is no valid code for this family (expired, used or too many tries); send a new one.",
        "该家庭没有有效的验证码（已过期、已使用或尝试次数过多）；请重新发送。",
    ),
    (
        "override_not_allowed",
        "Only a supervisor may cancel without the guardian's code.",
        "只有主管可以在没有监护人验证码的情况下取消。",
    ),
    (
        "too_many_codes",
        "Several codes were sent to this family just now; wait {minutes} minutes before sending another.",
        "刚刚已向该家庭发送了多个验证码；请 {minutes} 分钟后再发送。",
    ),
    ("no_contact", "This family has no email address to send a code to.", "该家庭没有可接收验证码的邮箱。"),
    ("received_in_future", "The date received cannot be in the future.", "收到日期不能晚于今天。"),
    (
        "received_too_long_ago",
        "Written notices received more than {days} days ago cannot be registered here; refer the case to a supervisor.",
        "收到超过 {days} 天的书面通知无法在此登记；请转交主管处理。",
    ),
    ("evidence_type_not_allowed", "The evidence must be one of: {types}.", "证据文件必须是以下类型之一：{types}。"),
    (
        "evidence_type_mismatch",
        "The evidence file's contents are not a {content_type} file.",
        "证据文件的内容不是 {content_type} 类型。",
    ),
    ("evidence_too_large", "The evidence file is larger than {max_bytes} bytes.", "证据文件超过 {max_bytes} 字节。"),
    ("too_many_evidence_files", "At most {max} evidence files can be added here.", "此处最多可添加 {max} 个证据文件。"),
    (
        "dispute_resolved",
        "This complaint is closed; file a new one if something is still wrong.",
        "此投诉已结案；如仍有问题，请提交新的投诉。",
    ),
    (
        "dispute_at_last_level",
        "This complaint is already with the legal department, the last level.",
        "此投诉已由最高一级的法务部门处理。",
    ),
];

/// Why a field (or a body, or a query) is not valid: `details.reason` is
/// one of these codes, stable for clients, and the message shows its text
/// in the caller's locale. `{…}` placeholders are filled from the details.
pub const REASONS: &[(&str, &str, &str)] = &[
    ("missing_field", "the field {field} is missing", "缺少字段 {field}"),
    ("unknown_field", "{field} is not a field of this request", "{field} 不是此请求的字段"),
    ("wrong_type", "{field} has the wrong type or value", "{field} 的类型或取值不正确"),
    ("syntax", "it is not well-formed JSON", "它不是格式正确的 JSON"),
    ("shape", "its shape does not match this endpoint", "其结构与此接口不符"),
    ("chars_between", "must be {min} to {max} characters", "须为 {min} 到 {max} 个字符"),
    ("tree_range", "is outside the log (up to {size})", "超出日志范围（最大为 {size}）"),
    (
        "not_with_service",
        "names one child, whose data is deleted in every service: leave out service",
        "指定一个孩子时，会删除其在所有服务中的数据，请不要同时指定服务",
    ),
    ("chars_max", "must be at most {max} characters", "最多 {max} 个字符"),
    ("one_line_chars_max", "must be at most {max} characters, on one line", "最多 {max} 个字符，且只能占一行"),
    ("one_of", "must be one of: {allowed}", "必须是以下之一：{allowed}"),
    (
        "rfc3339_instant",
        "must be an RFC 3339 instant such as 2027-01-10T02:00:00Z",
        "须为 RFC 3339 格式的时间，例如 2027-01-10T02:00:00Z",
    ),
    ("instant_range", "must lie between the years {from} and {until}", "须在 {from} 年到 {until} 年之间"),
    ("date", "must be a date written YYYY-MM-DD", "须为 YYYY-MM-DD 格式的日期"),
    (
        "service_name",
        "must be 2 to 32 of a-z, 0-9, _ and -, starting with a letter",
        "须为 2 到 32 个 a-z、0-9、_ 或 - 字符，并以字母开头",
    ),
    ("record_kind", "must be 2 to 32 of a-z, 0-9 and _", "须为 2 到 32 个 a-z、0-9 或 _ 字符"),
    ("recorded_at_range", "must lie between the year 2000 and tomorrow", "须在 2000 年到明天之间"),
    ("json_bytes_max", "must be at most {max} bytes of JSON", "JSON 最多 {max} 字节"),
    ("cursor", "is not a cursor this endpoint gave out", "不是此接口提供的游标"),
    ("url_credentials", "must not carry a user name or password", "不得包含用户名或密码"),
    ("https_url", "must be an https:// URL (http:// only on this host)", "须为 https:// 网址（仅本机可用 http://）"),
    ("digits", "must be {digits} digits", "须为 {digits} 位数字"),
    (
        "received_on_or_at",
        "give either received_on (a date) or received_at (an instant), not both",
        "请在 received_on（日期）和 received_at（时间）中二选一",
    ),
    (
        "code_or_override",
        "give either the guardian's code or an override reason, not both",
        "请在监护人的验证码和主管的书面理由中二选一",
    ),
    ("staff_reason", "staff must state why, in 1 to {max} characters", "工作人员须说明理由（1 到 {max} 个字符）"),
    ("staff_only", "{field} is for staff registering a request", "{field} 仅供工作人员登记申请时使用"),
    ("base64", "must be base64", "须为 base64 编码"),
    ("required", "is required", "为必填项"),
    ("email", "is not an email address", "不是有效的邮箱地址"),
    (
        "phone",
        "is not a phone number (6 to 20 digits; '+', spaces, '-' and brackets allowed)",
        "不是有效的电话号码（6 到 20 位数字，可含“+”、空格、“-”和括号）",
    ),
    ("time_zone", "is not an IANA time zone such as Asia/Shanghai", "不是 IANA 时区名，例如 Asia/Shanghai"),
    ("birth_date_range", "must lie within the past 25 years", "须在过去 25 年之内"),
    ("consent_required", "a guardian's consent is required to add a child", "添加孩子须经监护人同意"),
    ("currency_fixed", "a plan keeps its currency", "套餐的币种不可更改"),
    ("policy_shape", "does not have the fields and types of a policy", "不符合条款的字段和类型"),
    ("unknown_service", "there is no plan for the service {service}", "不存在服务 {service} 的套餐"),
    ("id", "is not an id of the right kind", "不是正确类型的编号"),
    (
        "text_chars_max",
        "must be 1 to {max} characters (line breaks allowed, other control characters not)",
        "须为 1 到 {max} 个字符（可换行，不可含其他控制字符）",
    ),
    ("not_yours", "is not a decision the caller can make here", "不是调用者在此可以作出的决定"),
    (
        "with_refunded_only",
        "goes with the outcome refunded, and only with it",
        "仅在处理结果为“已退款”时填写，且此时必填",
    ),
    ("no_subscription", "needs a complaint about a subscription", "仅适用于与订阅有关的投诉"),
    ("between", "must be between {min} and {max}", "须在 {min} 到 {max} 之间"),
    ("nothing_paid", "nothing was paid on this subscription", "此订阅没有付款记录"),
    ("year_month", "must be a month written YYYY-MM", "须为 YYYY-MM 格式的月份"),
];

/// The catalogue text for `code` in `locale`, placeholders filled from
/// `details` (string or number values); a `reason` code is shown as its
/// text from `REASONS`.
pub fn render(code: &str, locale: Locale, details: &serde_json::Value) -> String {
    let Some((_, en, zh)) = CATALOGUE.iter().find(|(c, _, _)| *c == code) else {
        return code.to_owned();
    };
    let text = pick(locale, en, zh);
    let reason = details.get("reason").and_then(|r| r.as_str()).and_then(|r| REASONS.iter().find(|(c, _, _)| *c == r));
    match reason {
        Some((_, en, zh)) => {
            let reason_text = fill(pick(locale, en, zh), details, None);
            fill(text, details, Some(&reason_text))
        }
        None => fill(text, details, None),
    }
}

fn pick(locale: Locale, en: &str, zh: &str) -> String {
    match locale {
        Locale::En => en.to_owned(),
        Locale::ZhCn => zh.to_owned(),
    }
}

/// `{key}` placeholders replaced by the details' values; `{reason}` by
/// `reason_text` when given.
fn fill(mut text: String, details: &serde_json::Value, reason_text: Option<&str>) -> String {
    if let Some(reason_text) = reason_text {
        text = text.replace("{reason}", reason_text);
    }
    if let Some(map) = details.as_object() {
        for (key, value) in map {
            let placeholder = format!("{{{key}}}");
            if text.contains(&placeholder) {
                let value = match value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                text = text.replace(&placeholder, &value);
            }
        }
    }
    text
}

/// Words for resources in "there is no such …".
pub fn resource_words(resource: &str, locale: Locale) -> &'static str {
    match (resource, locale) {
        ("family", Locale::En) => "family",
        ("family", Locale::ZhCn) => "家庭",
        ("plan", Locale::En) => "plan",
        ("plan", Locale::ZhCn) => "套餐",
        ("subscription", Locale::En) => "subscription",
        ("subscription", Locale::ZhCn) => "订阅",
        ("cancellation", Locale::En) => "cancellation",
        ("cancellation", Locale::ZhCn) => "取消申请",
        ("quote", Locale::En) => "quote",
        ("quote", Locale::ZhCn) => "报价",
        ("receipt", Locale::En) => "receipt",
        ("receipt", Locale::ZhCn) => "回执",
        ("child", Locale::En) => "child",
        ("child", Locale::ZhCn) => "孩子",
        ("export", Locale::En) => "export",
        ("export", Locale::ZhCn) => "导出",
        ("deletion", Locale::En) => "deletion request",
        ("deletion", Locale::ZhCn) => "删除申请",
        ("document", Locale::En) => "document in the audit log",
        ("document", Locale::ZhCn) => "审计日志中的文件",
        ("tree head", Locale::En) => "signed tree head",
        ("tree head", Locale::ZhCn) => "签名树头",
        (_, Locale::En) => "thing",
        (_, Locale::ZhCn) => "对象",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_text_in_both_locales_and_codes_are_unique() {
        let mut codes: Vec<&str> = CATALOGUE.iter().map(|(c, _, _)| *c).collect();
        let count = codes.len();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), count, "duplicate codes");
        for (code, en, zh) in CATALOGUE {
            assert!(!en.is_empty() && !zh.is_empty(), "{code}");
            assert_ne!(en, zh, "{code} is not translated");
        }
    }

    #[test]
    fn every_reason_has_text_in_both_locales_and_zh_cn_text_has_no_english_words() {
        let mut codes: Vec<&str> = REASONS.iter().map(|(c, _, _)| *c).collect();
        let count = codes.len();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), count, "duplicate reasons");
        let mut english = Vec::new();
        for (code, en, zh) in CATALOGUE.iter().chain(REASONS) {
            assert!(!en.is_empty() && !zh.is_empty(), "{code}");
            assert_ne!(en, zh, "{code} is not translated");
            if !english_words(zh).is_empty() {
                english.push(format!("{code}: {zh} {:?}", english_words(zh)));
            }
        }
        assert_eq!(english, Vec::<String>::new());
    }

    /// Runs of three or more Latin letters that are not placeholders, field
    /// names or the few technical names a Chinese text also uses.
    fn english_words(text: &str) -> Vec<String> {
        const TECHNICAL: &[&str] = &[
            "JSON",
            "RFC",
            "YYYY",
            "MM",
            "DD",
            "IANA",
            "Asia",
            "Shanghai",
            "SHA",
            "API",
            "application",
            "json",
            "base64",
            "http",
            "https",
            "Idempotency",
            "Key",
            "ASCII",
        ];
        // Command-line flags (`--clock simulated`) are what the operator types.
        let text: String = text
            .split_whitespace()
            .scan(false, |after_flag, token| {
                let skip = *after_flag || token.starts_with("--");
                *after_flag = token.starts_with("--");
                Some(if skip { "" } else { token })
            })
            .collect::<Vec<_>>()
            .join(" ");
        let mut words = Vec::new();
        let mut placeholder = false;
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '{' || c == '}')) {
            if word.starts_with('{') {
                placeholder = !word.ends_with('}');
                continue;
            }
            if placeholder {
                placeholder = !word.ends_with('}');
                continue;
            }
            let letters = word.chars().filter(|c| c.is_ascii_alphabetic()).count();
            if letters >= 3 && !TECHNICAL.contains(&word) && !word.contains('_') {
                words.push(word.to_owned());
            }
        }
        words
    }

    #[test]
    fn a_field_reason_is_shown_in_the_callers_language() {
        let details = serde_json::json!({"field": "consent", "reason": "consent_required"});
        assert_eq!(render("invalid_field", Locale::ZhCn, &details), "字段 consent 无效：添加孩子须经监护人同意");
        assert_eq!(
            render("invalid_field", Locale::En, &details),
            "The field consent is not valid: a guardian's consent is required to add a child"
        );
        let details = serde_json::json!({"field": "name", "reason": "chars_between", "min": 1, "max": 100});
        assert_eq!(render("invalid_field", Locale::ZhCn, &details), "字段 name 无效：须为 1 到 100 个字符");
    }

    #[test]
    fn placeholders_are_filled() {
        let text = render("not_cancellable", Locale::ZhCn, &serde_json::json!({"status": "cancelled"}));
        assert_eq!(text, "该订阅当前状态（cancelled）下无法取消。");
    }
}
