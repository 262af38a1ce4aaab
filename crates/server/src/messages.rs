//! The message catalogue for API errors: every error code has its text in
//! both locales here, and nowhere else. A test checks that every code the
//! server can produce has both.

use baobao_domain::Locale;

/// `(code, en, zh-CN)`. `{…}` placeholders are filled from the error's details.
pub const CATALOGUE: &[(&str, &str, &str)] = &[
    (
        "invalid_json",
        "The request body is not valid JSON for this endpoint: {reason}",
        "请求体不是此接口可接受的 JSON：{reason}",
    ),
    ("invalid_field", "The field {field} is not valid: {reason}", "字段 {field} 无效：{reason}"),
    ("invalid_query", "The query parameters are not valid: {reason}", "查询参数无效：{reason}"),
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
    ("export_not_ready", "This export is not ready yet (status {status}).", "该导出尚未完成（状态：{status}）。"),
    ("busy", "The server is busy; retry shortly.", "服务器繁忙，请稍后重试。"),
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
];

/// The catalogue text for `code` in `locale`, placeholders filled from
/// `details` (string or number values).
pub fn render(code: &str, locale: Locale, details: &serde_json::Value) -> String {
    let Some((_, en, zh)) = CATALOGUE.iter().find(|(c, _, _)| *c == code) else {
        return code.to_owned();
    };
    let mut text = match locale {
        Locale::En => (*en).to_owned(),
        Locale::ZhCn => (*zh).to_owned(),
    };
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
    fn placeholders_are_filled() {
        let text = render("not_cancellable", Locale::ZhCn, &serde_json::json!({"status": "cancelled"}));
        assert_eq!(text, "该订阅当前状态（cancelled）下无法取消。");
    }
}
